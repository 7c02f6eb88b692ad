package sshnative_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chain is three sshd: jump hosts a and b and a target, with an
// ssh_config that names them and known_hosts and keys for all three.
type chain struct {
	a, b, target *sshtest.Server
	sshConfig    string
	knownHosts   string
	// wrongKnownHosts has another key for a, for the host jump-badkey.
	wrongKnownHosts string
	keys            []string
}

func newChain(t *testing.T) *chain {
	t.Helper()
	c := &chain{a: sshtest.Start(t, sshtest.Options{}), b: sshtest.Start(t, sshtest.Options{}), target: sshtest.Start(t, sshtest.Options{})}
	dir := t.TempDir()
	var known []byte
	for _, s := range []*sshtest.Server{c.a, c.b, c.target} {
		b, err := os.ReadFile(s.KnownHosts)
		require.NoError(t, err)
		known = append(known, b...)
		c.keys = append(c.keys, s.ClientKey)
	}
	c.knownHosts = writeFile(t, filepath.Join(dir, "known_hosts"), string(known))
	wrong := sshtest.WriteKey(t, filepath.Join(dir, "wrong"), "ed25519")
	wrongKnown := writeFile(t, filepath.Join(dir, "wrong_known_hosts"), c.a.KnownHostsLine(wrong)+"\n")
	c.wrongKnownHosts = wrongKnown
	c.sshConfig = writeFile(t, filepath.Join(dir, "ssh_config"), fmt.Sprintf(`
Host jump-a
    HostName 127.0.0.1
    Port %d
Host jump-b
    HostName 127.0.0.1
    Port %d
Host jump-badkey
    HostName 127.0.0.1
    Port %d
    UserKnownHostsFile %s
Host behind-dead
    ProxyJump %s@127.0.0.1:%d
Host behind-badkey
    ProxyJump jump-badkey
Host behind-*
    HostName 127.0.0.1
    Port %d
    ProxyJump jump-a,jump-b
Host *
    User %s
`, c.a.Port, c.b.Port, c.a.Port, wrongKnown, c.a.User, closedPort(t), c.target.Port, c.target.User))
	return c
}

func (c *chain) opts() sshnative.SSHOptions {
	return sshnative.SSHOptions{SSHConfig: c.sshConfig, KeyFiles: c.keys, KnownHosts: []string{c.knownHosts}, NoAgent: true,
		ConnectTimeout: 5 * time.Second}
}

// connection returns the fields of SSH_CONNECTION a command printed:
// client address and port, server address and port.
func connection(t *testing.T, ev exe.Event) []string {
	t.Helper()
	require.NotNil(t, ev.Exec, ev.Msg)
	lines := strings.Split(strings.TrimSpace(ev.Exec.Stdout), "\n")
	f := strings.Fields(lines[len(lines)-1])
	require.Len(t, f, 4, "SSH_CONNECTION in %q", ev.Exec.Stdout)
	return f
}

func port(t *testing.T, s string) int {
	p, err := strconv.Atoi(s)
	require.NoError(t, err)
	return p
}

// Hosts behind a ProxyJump chain (from ssh_config, or -J in their ssh
// arguments) are reached through every hop, each hop's host key checked,
// and share one pooled connection per hop.
func TestProxyJumpChain(t *testing.T) {
	c := newChain(t)
	inv := fmt.Sprintf("behind-1\nbehind-2\nbehind-dead\nbehind-badkey\ndash-j ansible_host=127.0.0.1 ansible_port=%d ansible_ssh_common_args='-J jump-b'\n", c.target.Port)
	x := newInvExec(t, inv, c.opts())
	run := func(hosts ...string) map[string]exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: `echo "$SSH_CONNECTION"`}, emit)
		})
	}
	evs := run("behind-1", "behind-2")
	for _, h := range []string{"behind-1", "behind-2"} {
		require.Equal(t, exe.HostChanged, evs[h].Status, "%s: %s", h, evs[h].Msg)
		conn := connection(t, evs[h])
		assert.Equal(t, strconv.Itoa(c.target.Port), conn[3], h)
		assert.True(t, c.b.HoldsConnectionFrom(port(t, conn[1])), "%s: the target's client is jump host b", h)
	}
	// b's client is a.
	sentinel(t, c.b)
	bClients := c.b.ClientPorts()
	require.NotEmpty(t, bClients)
	assert.True(t, c.a.HoldsConnectionFrom(bClients[0]), "jump host b was reached through a")
	sentinel(t, c.a)
	assert.Equal(t, 2, c.a.Connections(), "one connection to a, shared (and the sentinel)")
	assert.Equal(t, 2, c.b.Connections(), "one connection to b, shared (and the sentinel)")

	// -J in ansible_ssh_common_args.
	ev := run("dash-j")["dash-j"]
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	assert.True(t, c.b.HoldsConnectionFrom(port(t, connection(t, ev)[1])))

	// A failing jump host: the hosts behind it are UNREACHABLE, naming it.
	evs = run("behind-dead", "behind-badkey")
	assert.Equal(t, exe.HostUnreachable, evs["behind-dead"].Status)
	assert.Regexp(t, `^jump host 127\.0\.0\.1 \(`+c.a.User+`@127\.0\.0\.1:\d+\): connection refused`, evs["behind-dead"].Msg)
	assert.Equal(t, exe.HostUnreachable, evs["behind-badkey"].Status)
	assert.Equal(t, fmt.Sprintf("jump host jump-badkey (%s@127.0.0.1:%d): host key mismatch for 127.0.0.1:%d: the key offered is not the one in known_hosts (%s:1; possible man-in-the-middle; fix known_hosts if the host was reinstalled)",
		c.a.User, c.a.Port, c.a.Port, c.wrongKnownHosts), evs["behind-badkey"].Msg)

	// The middle hop restarts: the chain is dialled again.
	c.b.Restart(t)
	ev = run("behind-1")["behind-1"]
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
}
