package sshnative_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// estate is an Ansible project against real sshd: a multi-key sshd that
// known_hosts knows only by its ed25519 key, a second sshd on another
// port, two jump hosts, several login users, sudo rules, and an inventory
// and ssh_config that reach them in the ways real projects do.
type estate struct {
	main, second, jumpA, jumpB *sshtest.Server
	dir, inventory, sshConfig  string
	// want is each host's expected login (or become) user and sshd port.
	want map[string][2]string
}

const secondUser = "exe-sshtest-second"

func newEstate(t *testing.T) *estate {
	t.Helper()
	testenv.NeedRoot(t)
	e := &estate{
		main:   sshtest.Start(t, sshtest.Options{HostKeyTypes: []string{"rsa", "ecdsa", "ed25519"}}),
		second: sshtest.Start(t, sshtest.Options{User: secondUser}),
		jumpA:  sshtest.Start(t, sshtest.Options{}),
		jumpB:  sshtest.Start(t, sshtest.Options{}),
		dir:    t.TempDir(),
	}
	sshtest.EnsureUser(t, sudoerPass)
	sshtest.EnsureUser(t, appUser)
	const pw = "estate-sudo-pw"
	sshtest.SetPassword(t, sudoerPass, pw)
	sshtest.Sudoers(t,
		sudoerNoPass+" ALL=("+appUser+") NOPASSWD: ALL",
		sudoerPass+" ALL=("+appUser+") ALL",
		"Defaults:"+sudoerPass+" timestamp_timeout=0",
		// The probe reads the sshd port from SSH_CONNECTION after sudo.
		`Defaults env_keep += "SSH_CONNECTION"`)
	// One client key for every sshd, and known_hosts with the main
	// server's ed25519 key only.
	key := filepath.Join(e.dir, "id_ed25519")
	pub := sshtest.WriteKey(t, key, "ed25519")
	known := e.main.KnownHostsLine(e.main.HostKeys["ssh-ed25519"]) + "\n"
	for _, s := range []*sshtest.Server{e.main, e.second, e.jumpA, e.jumpB} {
		s.Authorize(t, pub)
		if s != e.main {
			known += s.KnownHostsLine(s.HostKey) + "\n"
		}
	}
	knownHosts := writeFile(t, filepath.Join(e.dir, "known_hosts"), known)
	e.sshConfig = writeFile(t, filepath.Join(e.dir, "ssh_config"), fmt.Sprintf(`Host alias-main
    HostName 127.0.0.1
    Port %d
Host alias-second
    HostName 127.0.0.1
    Port %d
    User %s
Host jump-a
    HostName 127.0.0.1
    Port %d
Host jump-b
    HostName 127.0.0.1
    Port %d
Host behind-jumps
    HostName 127.0.0.1
    Port %d
    User %s
    ProxyJump jump-a,jump-b
Host *
    User %s
    IdentityFile %s
    IdentitiesOnly yes
    UserKnownHostsFile %s
    StrictHostKeyChecking yes
`, e.main.Port, e.second.Port, secondUser, e.jumpA.Port, e.jumpB.Port, e.second.Port, secondUser, sshtest.TestUser, key, knownHosts))
	mainPort, secondPort := strconv.Itoa(e.main.Port), strconv.Itoa(e.second.Port)
	e.inventory = writeFile(t, filepath.Join(e.dir, "hosts"), fmt.Sprintf(`[legacy]
node-0 ansible_ssh_host=127.0.0.1 ansible_ssh_port=%[2]d ansible_ssh_user=%[3]s ansible_host=192.0.2.1 ansible_port=1
[listed]
127.0.0.1:%[1]d ansible_user=%[4]s
[aliases]
alias-main
alias-second
[jumps]
behind-jumps
[become]
become-nopass ansible_host=127.0.0.1 ansible_port=%[1]d ansible_user=%[4]s ansible_become=true ansible_become_user=%[5]s
become-pass ansible_host=127.0.0.1 ansible_port=%[1]d ansible_user=%[6]s ansible_become=true ansible_become_user=%[5]s ansible_become_password=%[7]s
[all:vars]
ansible_ssh_common_args=-F %[8]s
`, e.main.Port, e.second.Port, secondUser, sshtest.TestUser, appUser, sudoerPass, pw, e.sshConfig))
	e.want = map[string][2]string{
		"node-0":        {secondUser, secondPort},
		"127.0.0.1":     {sshtest.TestUser, mainPort},
		"alias-main":    {sshtest.TestUser, mainPort},
		"alias-second":  {secondUser, secondPort},
		"behind-jumps":  {secondUser, secondPort},
		"become-nopass": {appUser, mainPort},
		"become-pass":   {appUser, mainPort},
	}
	return e
}

// probe is what the comparison runs on every host: the user, then the
// sshd port the login came through (SSH_CONNECTION's last field; the
// estate's sudo keeps that variable).
const probe = `id -un; echo "${SSH_CONNECTION##* }"`

// ansibleRaw runs `ansible all -m raw` on the estate and returns each
// host's stdout.
func (e *estate) ansibleRaw(t *testing.T, cmd string) map[string]string {
	t.Helper()
	testenv.NeedBinary(t, "ansible")
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "ansible.cfg"), nil, 0o600))
	c := exec.Command("ansible", "-i", e.inventory, "all", "-m", "raw", "-a", cmd)
	c.Dir = work
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANSIBLE_") {
			c.Env = append(c.Env, kv)
		}
	}
	c.Env = append(c.Env, "ANSIBLE_CONFIG="+filepath.Join(work, "ansible.cfg"), "ANSIBLE_HOME="+filepath.Join(work, "home"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp"), "ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(work, "cp"),
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=1", "ANSIBLE_STDOUT_CALLBACK=json", "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORKS=10")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	_ = c.Run() // a failed host makes ansible exit non-zero; its result says why
	var out struct {
		Plays []struct {
			Tasks []struct {
				Hosts map[string]struct {
					Stdout string `json:"stdout"`
					Msg    string `json:"msg"`
					RC     int    `json:"rc"`
				} `json:"hosts"`
			} `json:"tasks"`
		} `json:"plays"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), "ansible: %s\n%s", stdout.String(), stderr.String())
	require.Len(t, out.Plays, 1, stderr.String())
	res := map[string]string{}
	for host, r := range out.Plays[0].Tasks[0].Hosts {
		require.Zero(t, r.RC, "ansible on %s: %s %s", host, r.Msg, r.Stdout)
		res[host] = strings.ReplaceAll(r.Stdout, "\r", "")
	}
	return res
}

// For the same inventory and ssh_config, exed runs a command as the same
// user through the same sshd as `ansible -m raw`: legacy ansible_ssh_*
// variables, a listed 127.0.0.1:PORT, ssh_config aliases, a two-hop
// ProxyJump chain, sudo with and without a password, and an sshd with
// rsa, ecdsa and ed25519 keys that known_hosts knows only by ed25519.
func TestSameHostsAndUsersAsAnsible(t *testing.T) {
	e := newEstate(t)
	cmd := probe
	inv, err := os.ReadFile(e.inventory)
	require.NoError(t, err)
	x := newCfgExec(t, string(inv), sshnative.Config{SSH: sshnative.SSHOptions{SSHConfig: "none", NoAgent: true}})
	hosts, err := x.Match(context.Background(), "all")
	require.NoError(t, err)
	sort.Strings(hosts)
	wantHosts := make([]string, 0, len(e.want))
	for h := range e.want {
		wantHosts = append(wantHosts, h)
	}
	sort.Strings(wantHosts)
	require.Equal(t, wantHosts, hosts)

	evs := collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: cmd}, emit)
	})
	ansibleOut := e.ansibleRaw(t, cmd)
	for _, h := range hosts {
		ev := evs[h]
		require.Equal(t, exe.HostChanged, ev.Status, "exed on %s: %s", h, ev.Msg)
		got := strings.Fields(ev.Exec.Stdout)
		require.Len(t, got, 2, "exed on %s: %q", h, ev.Exec.Stdout)
		fromAnsible := strings.Fields(ansibleOut[h])
		require.Len(t, fromAnsible, 2, "ansible on %s: %q", h, ansibleOut[h])
		assert.Equal(t, fromAnsible, got, "%s: exed and ansible -m raw agree on user and sshd port", h)
		want := e.want[h]
		assert.Equal(t, want[:], got, "%s: the user and port the files say", h)
	}
}
