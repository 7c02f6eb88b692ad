package sshnative

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sshG is what `ssh -G` prints for the keywords sshnative applies: the
// first value of each, every identityfile.
func sshG(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	out, err := exec.Command("ssh", append([]string{"-G"}, args...)...).CombinedOutput()
	require.NoError(t, err, "ssh -G %v: %s", args, out)
	got := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, " ")
		switch {
		case !ok:
		case k == "identityfile":
			got[k] = append(got[k], v)
		case k == "hostname", k == "user", k == "port", k == "proxyjump", k == "stricthostkeychecking",
			k == "connecttimeout", k == "serveraliveinterval", k == "userknownhostsfile", k == "hashknownhosts":
			got[k] = []string{v}
		}
	}
	return got
}

// TestSSHConfigAsSSHDoes evaluates ssh_config files, Match lines above all,
// with sshnative and with OpenSSH's `ssh -G -F FILE [-l USER] HOST`, and
// compares where and as whom each would connect.
func TestSSHConfigAsSSHDoes(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	me, err := user.Current()
	require.NoError(t, err)
	dir := t.TempDir()
	// Files an Include names; {dir} and {me} are replaced in every text.
	for name, text := range map[string]string{
		"inc-match": "Match host 10.9.0.* user deploy\n  Port 2302\nMatch !user deploy\n  Port 2303\n",
		"inc-final": "Match final\n  Port 2304\n",
		"inc-plain": "Port 2305\nHost inc-b\n  Port 2306\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	type probe struct {
		host, user string // user: -l, Ansible's remote user
	}
	cases := []struct {
		name   string
		config string
		probes []probe
	}{
		{"second criterion fails (review case)", `Host *.lab
    HostName 127.0.0.1
Match host 127.0.0.1 user nosuchuser
    User app
    Port 2202
Host *
    Port 2201
`, []probe{{"a.lab", ""}, {"a.lab", "nosuchuser"}, {"a.lab", "other"}}},
		{"negated originalhost", `Host *.lab
    HostName 127.0.0.1
Match host 127.0.0.1 !originalhost special.lab
    Port 2202
Host *
    Port 2201
`, []probe{{"a.lab", ""}, {"special.lab", ""}, {"SPECIAL.LAB", ""}}},
		{"negated pattern only never matches", `Host *.lab
    HostName 127.0.0.1
Match host 127.0.0.1 originalhost !special.lab
    Port 2202
Host *
    Port 2201
`, []probe{{"a.lab", ""}, {"special.lab", ""}}},
		{"pattern lists", `Match originalhost a.lab,b.lab user root,deploy
    Port 2210
Match host *,!c.lab
    User listed
Match host "x.lab,!y.lab" user=listed
    Port 2211
`, []probe{{"a.lab", ""}, {"b.lab", "deploy"}, {"b.lab", "nobody"}, {"c.lab", ""}, {"x.lab", ""}, {"y.lab", ""}}},
		{"localuser", `Match localuser {me}
    Port 2220
Match !localuser {me}
    User never
Match localuser nosuch,{me} !user root
    User mine
`, []probe{{"a", ""}, {"a", "root"}, {"a", "deploy"}}},
		{"user set by an earlier block", `Host app*
    User ops
Match user ops
    Port 2230
Match user root
    Port 2231
Match !user ops
    HostName 10.0.0.1
`, []probe{{"app1", ""}, {"web", ""}, {"app1", "root"}}},
		{"all", `Match host a all
    Port 2240
Match !all
    User never
Match canonical all
    User canonical
Match all # a comment
    User everyone
`, []probe{{"a", ""}, {"b", ""}}},
		{"Match host compares the HostName so far", `Host web?
    HostName %h.example.COM
Match host web1.example.com
    Port 2250
Match host *.example.com !host web2*
    User web
Match originalhost web* host WEB2.EXAMPLE.COM
    Port 2251
`, []probe{{"web1", ""}, {"web2", ""}, {"web", ""}}},
		{"final pass", `Host alias
    HostName 10.0.0.5
Host 10.0.0.5
    User fromhostline
Host Mixed
    User mixed
Match final
    Port 2260
    HostName ignored.example
Match canonical
    IdentityFile /keys/canonical
Match !final
    IdentityFile /keys/first
    IdentityFile /keys/canonical
`, []probe{{"alias", ""}, {"Mixed", ""}, {"mixed", ""}, {"other", "root"}}},
		{"Host patterns", "Host a?\n    Port 2270\nHost\tb*\tc\n    Port 2271\nHost AB\n    User upper\nHost * !d*\n    User star\n",
			[]probe{{"a", ""}, {"ab", ""}, {"AB", ""}, {"c", ""}, {"d1", ""}, {"bx", ""}}},
		{"Include", `Host inc-*
    HostName 10.9.0.1
Host inc-a inc-b
    Include {dir}/inc-match
Host inc-c
    Include {dir}/inc-plain {dir}/inc-none-*.conf {dir}/inc-final
Host inc-b
    Include {dir}/inc-plain
Host *
    Include {dir}/inc-none-*.conf
    IdentityFile /keys/all
`, []probe{{"inc-a", "deploy"}, {"inc-a", ""}, {"inc-b", ""}, {"inc-c", ""}, {"other", ""}}},
		{"settings in Match blocks", `Match host 10.* user deploy
    ProxyJump bastion
    StrictHostKeyChecking accept-new
    ConnectTimeout 1m30s
    ServerAliveInterval 15
    UserKnownHostsFile /kh/deploy
Host b
    HostName 10.1.1.1
`, []probe{{"b", "deploy"}, {"b", ""}, {"10.2.2.2", "deploy"}}},
		{"Match= and Keyword=Value", "Match=host=a\n    Port=2280\nHost = b c\n    User = \"quoted\"\n    PORT 2281\n",
			[]probe{{"a", ""}, {"b", ""}, {"c", ""}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config := strings.NewReplacer("{dir}", dir, "{me}", me.Username).Replace(tc.config)
			path := filepath.Join(dir, "config"+strconv.Itoa(i))
			require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
			r := newResolver(SSHOptions{SSHConfig: path})
			_, err := r.check()
			require.NoError(t, err)
			for _, p := range tc.probes {
				args := []string{"-F", path}
				if p.user != "" {
					args = append(args, "-l", p.user)
				}
				want := sshG(t, append(args, p.host)...)
				e, err := r.resolve(p.host, connSettings{Conn: inventory.Conn{Address: p.host}}, p.user)
				require.NoError(t, err, "%s as %q", p.host, p.user)
				compareWithSSHG(t, want, e, p.host+" as "+strconv.Quote(p.user))
			}
		})
	}
}

// compareWithSSHG compares an endpoint with what ssh -G printed for it.
func compareWithSSHG(t *testing.T, want map[string][]string, e *endpoint, what string) {
	t.Helper()
	assert.Equal(t, want["hostname"], []string{e.hostname}, what)
	assert.Equal(t, want["user"], []string{e.user}, what)
	assert.Equal(t, want["port"], []string{strconv.Itoa(e.port)}, what)
	if len(e.identities) > 0 {
		assert.Equal(t, want["identityfile"], e.identities, what)
	}
	if e.jump != nil {
		assert.Equal(t, want["proxyjump"], []string{e.jump.alias}, what)
	} else {
		assert.Empty(t, want["proxyjump"], what)
	}
	strict := map[string]string{"true": "yes", "ask": "yes", "false": "no", "accept-new": "accept-new"}[want["stricthostkeychecking"][0]]
	assert.Equal(t, strict, e.strict, what)
	timeout := "none"
	if e.connectTimeout > 0 {
		timeout = strconv.Itoa(int(e.connectTimeout.Seconds()))
	}
	assert.Equal(t, want["connecttimeout"], []string{timeout}, what)
	assert.Equal(t, want["serveraliveinterval"], []string{strconv.Itoa(int(e.keepAlive.Seconds()))}, what)
	assert.Equal(t, want["hashknownhosts"], []string{map[bool]string{true: "yes", false: "no"}[e.hashKnownHosts]}, what)
	wantKnown := strings.Fields(want["userknownhostsfile"][0])
	require.GreaterOrEqual(t, len(e.knownHosts), len(wantKnown), what)
	assert.Equal(t, wantKnown, e.knownHosts[:len(wantKnown)], what)
}

// Without ssh_config configured, the files ssh reads by default (the
// user's, then this machine's /etc/ssh/ssh_config and what it includes)
// give what ssh -G gives.
func TestDefaultSSHConfigAsSSHDoes(t *testing.T) {
	testenv.NeedBinary(t, "ssh")
	r := newResolver(SSHOptions{})
	warnings, err := r.check()
	require.NoError(t, err)
	assert.Empty(t, warnings)
	for _, host := range []string{"web1.example.com", "127.0.0.1", "Mixed.Example"} {
		e, err := r.resolve(host, connSettings{Conn: inventory.Conn{Address: host}}, "")
		require.NoError(t, err, host)
		compareWithSSHG(t, sshG(t, host), e, host)
	}
}

// Match lines ssh itself refuses, and criteria sshnative does not
// evaluate wherever they are on the line, stop the load with the file,
// the line and the cause; the system ssh_config is then not applied.
func TestSSHConfigMatchRefusedAtLoad(t *testing.T) {
	ssh := testenv.NeedBinary(t, "ssh")
	dir := t.TempDir()
	for i, tc := range []struct {
		line, msg  string
		sshRefuses bool
	}{
		{"Match host a b", `unknown Match criterion "b"`, true},
		{"Match host a,b user c d", `unknown Match criterion "d"`, true},
		{"Match user", `Match user without an argument`, true},
		{"Match", `Match without a criterion`, true},
		{"Match # nothing", `Match without a criterion`, true},
		{"Match host a user b all", `Match "all" cannot be combined with other criteria`, true},
		{"Match all host a", `Match "all" cannot be combined with other criteria`, true},
		{"Match host a tagged b", `sshnative does not evaluate the Match criterion "tagged"`, true},
		{"Match exec true", `sshnative does not evaluate the Match criterion "exec"`, false},
		{"Match host a exec true", `sshnative does not evaluate the Match criterion "exec"`, false},
		{"Match host a user b !exec true", `sshnative does not evaluate the Match criterion "!exec"`, false},
		{"Match originalhost a localnetwork 10.0.0.0/8", `sshnative does not evaluate the Match criterion "localnetwork"`, true},
		{"Match host \"a", `no closing quote`, true},
	} {
		path := filepath.Join(dir, "config"+strconv.Itoa(i))
		require.NoError(t, os.WriteFile(path, []byte("Host x\n  Port 1\n"+tc.line+"\n  Port 2\n"), 0o600))
		out, err := exec.Command(ssh, "-G", "-F", path, "a").CombinedOutput()
		assert.Equal(t, tc.sshRefuses, err != nil, "ssh -G for %q: %s", tc.line, out)

		want := "ssh_config " + path + ":3: " + tc.msg
		if strings.HasPrefix(tc.msg, "sshnative") {
			want += " (it evaluates all, canonical, final, host, originalhost, user and localuser): ssh could pick another block than sshnative"
		}
		_, err = newResolver(SSHOptions{SSHConfig: path}).check()
		assert.EqualError(t, err, want, tc.line)
	}

	// In an included file too.
	inc := filepath.Join(dir, "included")
	require.NoError(t, os.WriteFile(inc, []byte("Match host a exec true\n"), 0o600))
	path := filepath.Join(dir, "includes")
	require.NoError(t, os.WriteFile(path, []byte("Host b\n  Include "+inc+"\n"), 0o600))
	_, err := newResolver(SSHOptions{SSHConfig: path}).check()
	assert.ErrorContains(t, err, "ssh_config "+inc+":1: sshnative does not evaluate the Match criterion \"exec\"")
	assert.ErrorContains(t, err, "(included from "+path+":2)")
}

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		s, p string
		want bool
	}{
		{"a", "a", true}, {"a", "?", true}, {"", "?", false}, {"a", "a?", false}, {"ab", "a?", true},
		{"abc", "*", true}, {"", "*", true}, {"abc", "a*c", true}, {"abc", "a*b", false}, {"aXbXc", "a*b*c", true},
		{"web1.example.com", "*.example.com", true}, {"example.com", "*.example.com", false}, {"abab", "*ab", true},
	} {
		assert.Equal(t, tc.want, matchPattern(tc.s, tc.p), "%q %q", tc.s, tc.p)
	}
}
