package sshnative

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		`-o ProxyJump=a,b -C`:                    {"-o", "ProxyJump=a,b", "-C"},
		`-o "ProxyCommand=ssh -W %h:%p bastion"`: {"-o", "ProxyCommand=ssh -W %h:%p bastion"},
		`-o 'User=it'"'"'s' a\ b`:                {"-o", "User=it's", "a b"},
		`  `:                                     nil,
		`""`:                                     {""},
		`"a\"b\\c\d"`:                            {`a"b\c\d`},
	} {
		got, err := splitShellWords(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := splitShellWords(`-o "open`)
	assert.EqualError(t, err, "no closing quotation")
}

func TestSSHArgsFirstValueWins(t *testing.T) {
	a := &sshArgs{}
	a.parse([]string{"-p2200", "-o", "Port=2300", "-l", "deploy", "-oUser=other", "-i", "k1", "-o", "IdentityFile=k2",
		"-J", "jump1", "-o", "ProxyJump=jump2", "-tt", "-vvv", "-C", "-o", "ControlMaster=auto",
		"-o", "Ciphers aes256-ctr", "-o", "ProxyCommand=nc %h %p", "-W", "x:1", "-F", "/cfg", "stray"})
	assert.Equal(t, "2200", a.opts["port"])
	assert.Equal(t, "deploy", a.opts["user"])
	assert.Equal(t, "jump1", a.opts["proxyjump"])
	assert.Equal(t, []string{"k1", "k2"}, a.identities)
	assert.Equal(t, "/cfg", a.configFile)
	assert.Equal(t, []string{"-o Ciphers aes256-ctr", "stray"}, a.ignored)
	assert.Equal(t, []string{"-o ProxyCommand=nc %h %p", "-W x:1"}, a.refused)

	a = &sshArgs{}
	a.parse([]string{"-o", "ProxyCommand=none", "-o", "CanonicalizeHostname=no"})
	assert.Empty(t, a.refused, "options turned off change nothing")
}

func TestParseJumpSpec(t *testing.T) {
	for in, want := range map[string][3]string{
		"bastion":                 {"", "bastion", ""},
		"ops@bastion:2222":        {"ops", "bastion", "2222"},
		"ssh://ops@bastion:2222":  {"ops", "bastion", "2222"},
		"[2001:db8::1]:22":        {"", "2001:db8::1", "22"},
		"a@b@host":                {"a@b", "host", ""},
		"2001:db8::1":             {"", "2001:db8::1", ""},
		"ops@[::1]":               {"ops", "::1", ""},
		"ssh://[fe80::1%eth0]:24": {"", "fe80::1%eth0", "24"},
	} {
		u, h, p, err := parseJumpSpec(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, [3]string{u, h, p}, in)
	}
	for _, bad := range []string{"host:0", "host:x", "[::1", "@"} {
		_, _, _, err := parseJumpSpec(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseSSHTime(t *testing.T) {
	for in, want := range map[string]time.Duration{"10": 10 * time.Second, "1m30s": 90 * time.Second, "2h": 2 * time.Hour, "0": 0} {
		d, err := parseSSHTime(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, d, in)
	}
	_, err := parseSSHTime("5y")
	assert.Error(t, err)
}

// resolveWith resolves a host with settings c against an ssh_config text.
func resolveWith(t *testing.T, config string, opts SSHOptions, c connSettings) (*endpoint, error) {
	t.Helper()
	dir := t.TempDir()
	opts.SSHConfig = filepath.Join(dir, "ssh_config")
	require.NoError(t, os.WriteFile(opts.SSHConfig, []byte(config), 0o600))
	r := newResolver(opts)
	r.localUser, r.home = "me", "/home/me"
	r.setKnownHosts(opts.KnownHosts) // ~/.ssh's, in the home set here
	_, err := r.check()
	require.NoError(t, err)
	remote := c.User
	if remote == "" {
		remote = opts.User
	}
	return r.resolve("inv", c, remote)
}

func TestResolveAppliesSSHConfigAsSSHDoes(t *testing.T) {
	config := `
Host web*
    HostName 10.0.0.%h-ignored
Host web1
    Port 2201
Host web*
    HostName %h.internal
    User deploy
    IdentityFile ~/.ssh/%r@%h
    IdentityFile /keys/common
    UserKnownHostsFile ~/.ssh/known_%n /etc/known
    StrictHostKeyChecking accept-new
    ConnectTimeout 1m
    ServerAliveInterval 15
Host db
    ProxyJump ops@bastion:2222,inner
    User dbadmin
Host bastion
    HostName 192.0.2.1
    IdentityFile /keys/bastion
Host inner
    HostName 10.1.0.1
    ProxyJump ignored-for-a-later-hop
Host proxied
    ProxyCommand ssh -W %h:%p gw
Host both
    ProxyJump gw
    ProxyCommand ssh -W %h:%p gw
Host aliased
    HostKeyAlias other
`
	// The first HostName obtained wins, even if a later block is more
	// specific: here the first Host web* block's.
	e, err := resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "web1"}})
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.web1-ignored", e.hostname)
	assert.Equal(t, 2201, e.port)
	assert.Equal(t, "deploy", e.user)
	assert.Equal(t, []string{"/home/me/.ssh/deploy@10.0.0.web1-ignored", "/keys/common"}, e.identities)
	assert.Equal(t, []string{"/home/me/.ssh/known_web1", "/etc/known", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}, e.knownHosts)
	assert.Equal(t, "accept-new", e.strict)
	assert.Equal(t, time.Minute, e.connectTimeout)
	assert.Equal(t, 15*time.Second, e.keepAlive)

	// Ansible's variables come first on the command line: they win.
	e, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "web1", Port: 22, User: "ansible", PrivateKeyFile: "/keys/host"}})
	require.NoError(t, err)
	assert.Equal(t, 22, e.port)
	assert.Equal(t, "ansible", e.user)
	assert.Equal(t, "/keys/host", e.identities[0])

	// [sshnative] remote_user is Ansible's remote_user: it wins too.
	e, err = resolveWith(t, config, SSHOptions{User: "configured"}, connSettings{Conn: inventory.Conn{Address: "web1"}})
	require.NoError(t, err)
	assert.Equal(t, "configured", e.user)

	// ssh_args come before Ansible's own options, common args after.
	e, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "web2", SSHArgs: "-o Port=2300", Port: 2400,
		SSHCommonArgs: "-o User=common -o HostName=10.9.9.9"}})
	require.NoError(t, err)
	assert.Equal(t, 2300, e.port)
	assert.Equal(t, "common", e.user)
	assert.Equal(t, "10.9.9.9", e.hostname)

	// No ssh_config block: ssh's defaults.
	e, err = resolveWith(t, config, SSHOptions{KnownHosts: []string{"/kh"}}, connSettings{Conn: inventory.Conn{Address: "192.0.2.7"}})
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.7:22", e.addr())
	assert.Equal(t, "me", e.user)
	assert.Equal(t, []string{"/kh", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}, e.knownHosts)
	assert.Equal(t, "yes", e.strict)
	assert.Nil(t, e.jump)

	// A ProxyJump chain: the first hop's own ssh_config applies, with the
	// spec's user and port; a later hop's ProxyJump does not.
	e, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "db"}})
	require.NoError(t, err)
	assert.Equal(t, "dbadmin@db:22", e.user+"@"+e.addr())
	require.NotNil(t, e.jump)
	inner := e.jump
	assert.Equal(t, "me@10.1.0.1:22", inner.user+"@"+inner.addr())
	require.NotNil(t, inner.jump)
	bastion := inner.jump
	assert.Equal(t, "ops@192.0.2.1:2222", bastion.user+"@"+bastion.addr())
	assert.Equal(t, []string{"/keys/bastion"}, bastion.identities)
	assert.Nil(t, bastion.jump)
	assert.Equal(t, "me@10.1.0.1:22 (yes /home/me/.ssh/known_hosts /home/me/.ssh/known_hosts2 /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2) via ops@192.0.2.1:2222 (yes /home/me/.ssh/known_hosts /home/me/.ssh/known_hosts2 /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2) keys /keys/bastion", inner.key())

	// -J in the host's ssh arguments wins over ssh_config.
	e, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "db", SSHExtraArgs: "-J bastion"}})
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.1:22", e.jump.addr())
	assert.Nil(t, e.jump.jump)

	// What would make ssh connect some other way is refused.
	for addr, msg := range map[string]string{
		"proxied": "sshnative cannot apply ProxyCommand ssh -W %h:%p gw",
		"aliased": "sshnative cannot apply HostKeyAlias other",
	} {
		_, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: addr}})
		var ue *unreachableError
		require.ErrorAs(t, err, &ue, addr)
		assert.Contains(t, err.Error(), msg, addr)
	}
	// ProxyJump read first: ProxyCommand is ignored, as by ssh.
	e, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "both"}})
	require.NoError(t, err)
	assert.Equal(t, "gw:22", e.jump.addr())
	_, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "x", SSHCommonArgs: `-o "ProxyCommand=nc %h %p"`}})
	assert.ErrorContains(t, err, "sshnative cannot apply -o ProxyCommand=nc %h %p")
}

// A Match host block compares the host name set so far (HostName), a
// Host block the name given, as in ssh; an Include is followed.
func TestResolveMatchHostAndInclude(t *testing.T) {
	dir := t.TempDir()
	included := filepath.Join(dir, "included")
	require.NoError(t, os.WriteFile(included, []byte("Host inc\n  Port 2300\n  IdentityFile /keys/inc\n"), 0o600))
	config := fmt.Sprintf(`Host web1
    HostName 10.0.0.7
Match host 10.0.0.*
    User netops
    Port 2200
Host 10.0.0.*
    User never
Match all
    IdentityFile /keys/all
Include %s
`, included)
	e, err := resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "web1"}})
	require.NoError(t, err)
	assert.Equal(t, "netops@10.0.0.7:2200", e.user+"@"+e.addr())
	assert.Equal(t, []string{"/keys/all"}, e.identities)
	e, err = resolveWith(t, config, SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "inc"}})
	require.NoError(t, err)
	assert.Equal(t, "me@inc:2300", e.user+"@"+e.addr())
	assert.Equal(t, []string{"/keys/all", "/keys/inc"}, e.identities)
}

func TestResolveCommandLineConfigFile(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own")
	require.NoError(t, os.WriteFile(own, []byte("Host app\n  HostName 10.2.0.1\n  Port 2022\n"), 0o600))
	e, err := resolveWith(t, "Host app\n  HostName 10.3.0.1\n", SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "app", SSHCommonArgs: "-F " + own}})
	require.NoError(t, err)
	assert.Equal(t, "10.2.0.1:2022", e.addr(), "-F replaces the configured ssh_config")

	_, err = resolveWith(t, "", SSHOptions{}, connSettings{Conn: inventory.Conn{Address: "app", SSHCommonArgs: "-F " + filepath.Join(dir, "nope")}})
	assert.ErrorContains(t, err, "ssh -F "+filepath.Join(dir, "nope"))
}

// The system ssh_config may use Match criteria sshnative does not
// evaluate ("Match exec"): it is skipped with a warning. The user's own file, or a configured one, must parse.
func TestSystemSSHConfigThatDoesNotParseIsSkipped(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "config")
	system := filepath.Join(dir, "ssh_config")
	require.NoError(t, os.WriteFile(user, []byte("Host app\n  Port 2022\n"), 0o600))
	require.NoError(t, os.WriteFile(system, []byte("Match exec \"test -d /run/x\"\n  GSSAPIAuthentication yes\n"), 0o600))
	r := newResolver(SSHOptions{})
	r.configPaths = []string{user, system}
	r.lenient = map[string]bool{system: true}
	r.configs.Store(r.newConfigCache())
	warnings, err := r.check()
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "ssh_config "+system+":1: ")
	assert.Contains(t, warnings[0], "the file is not applied")
	e, err := r.resolve("app", connSettings{Conn: inventory.Conn{Address: "app"}}, "")
	require.NoError(t, err)
	assert.Equal(t, 2022, e.port)

	_, err = newResolver(SSHOptions{SSHConfig: system}).check()
	assert.ErrorContains(t, err, "ssh_config "+system+":1: ")
}
