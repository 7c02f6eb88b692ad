package sshnative_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dials counts the connections an executor sets up and holds.
type dials struct {
	mu             sync.Mutex
	dialed, failed int
	pooled         int
}

func (d *dials) Dialed(_ time.Duration, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.failed++
	} else {
		d.dialed++
	}
}

func (d *dials) Pooled(delta int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pooled += delta
}

// counts are the connections set up, the dials that failed, and the
// connections pooled now.
func (d *dials) counts() (dialed, failed, pooled int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dialed, d.failed, d.pooled
}

// khHost is one sshd and an executor for two inventory aliases of it, a
// and b (a connection pooled for each), checking host keys against a
// known_hosts file of its own.
type khHost struct {
	s    *sshtest.Server
	kh   string
	x    *sshnative.Executor
	obs  *dials
	line string // the line that trusts the sshd
}

func newKHHost(t *testing.T, s *sshtest.Server) *khHost {
	t.Helper()
	h := &khHost{s: s, obs: &dials{}, line: s.KnownHostsLine(s.HostKey)}
	h.kh = writeFile(t, filepath.Join(t.TempDir(), "known_hosts"), h.line+"\n")
	inv := fmt.Sprintf("a ansible_host=127.0.0.1 ansible_port=%d\nb ansible_host=127.0.0.1 ansible_port=%d\n", s.Port, s.Port)
	h.x = newCfgExec(t, inv, sshnative.Config{Observer: h.obs, SSH: sshnative.SSHOptions{
		User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{h.kh}, NoAgent: true}})
	return h
}

func (h *khHost) run(t *testing.T, host string) exe.Event {
	t.Helper()
	return collect(t, func(emit exe.Emit) error {
		return h.x.Execute(context.Background(), []string{host}, exe.ExecuteArgs{Cmd: "echo ok"}, emit)
	})[host]
}

func (h *khHost) ok(t *testing.T, host string) {
	t.Helper()
	ev := h.run(t, host)
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	require.Equal(t, "ok\n", ev.Exec.Stdout)
}

// rewrite replaces the known_hosts file in place, as an editor or
// ssh-keygen -R (which renames a new file over it) leaves it: the same
// path, new contents.
func rewrite(t *testing.T, path string, lines ...string) {
	t.Helper()
	text := ""
	for _, l := range lines {
		text += l + "\n"
	}
	writeFile(t, path, text)
}

// OpenSSH reads known_hosts for every connection: a key removed from it,
// revoked in it or replaced in it is refused from the next command on,
// for a host with a pooled connection as for one without, and the pooled
// connection is closed; the key put back is trusted again.
func TestKnownHostsEditTakesEffectAtOnce(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	other := sshtest.WriteKey(t, filepath.Join(t.TempDir(), "other"), "ed25519")
	target := fmt.Sprintf("127.0.0.1:%d", s.Port)
	for _, tc := range []struct {
		name string
		edit func(h *khHost) []string // the new lines
		msg  func(h *khHost) string
	}{
		{"removed", func(h *khHost) []string {
			// Another host's line stays: the file is not empty.
			return []string{knownhosts.Line([]string{"other.example"}, s.HostKey)}
		}, func(h *khHost) string {
			return fmt.Sprintf("host key unknown: %s is not in known_hosts", target)
		}},
		{"revoked", func(h *khHost) []string {
			return []string{h.line, "@revoked " + knownhosts.Line([]string{"*"}, s.HostKey)}
		}, func(h *khHost) string {
			return fmt.Sprintf("host key of %s is revoked: known_hosts has it in a @revoked line (%s:2)", target, h.kh)
		}},
		{"replaced", func(h *khHost) []string {
			return []string{s.KnownHostsLine(other)}
		}, func(h *khHost) string {
			return fmt.Sprintf("host key mismatch for %s: the key offered is not the one in known_hosts (%s:1;", target, h.kh)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newKHHost(t, s)
			h.ok(t, "a")
			_, _, pooled := h.obs.counts()
			require.Equal(t, 1, pooled)

			rewrite(t, h.kh, tc.edit(h)...)
			for _, host := range []string{"a", "b"} { // a pooled, b new
				ev := h.run(t, host)
				assert.Equal(t, exe.HostUnreachable, ev.Status, host)
				assert.True(t, strings.HasPrefix(ev.Msg, tc.msg(h)), "%s: %s", host, ev.Msg)
			}
			dialed, failed, pooled := h.obs.counts()
			assert.Equal(t, 1, dialed)
			assert.Equal(t, 2, failed, "a's pooled connection is not reused: a is dialled again")
			assert.Equal(t, 0, pooled, "a's pooled connection is closed")

			rewrite(t, h.kh, h.line)
			h.ok(t, "a")
			h.ok(t, "b")
		})
	}
}

// A host reached through a jump host whose key known_hosts no longer
// trusts is refused, though its own pooled connection, through the jump
// host's, is still open: ssh would check the jump host's key again.
func TestKnownHostsEditTakesEffectOnJumpHosts(t *testing.T) {
	c := newChain(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	known, err := os.ReadFile(c.knownHosts)
	require.NoError(t, err)
	writeFile(t, kh, string(known))
	obs := &dials{}
	x := newCfgExec(t, "behind-a ansible_ssh_common_args='-J jump-a'\n", sshnative.Config{Observer: obs, SSH: sshnative.SSHOptions{
		SSHConfig: c.sshConfig, User: c.target.User, KeyFiles: c.keys, KnownHosts: []string{kh}, NoAgent: true}})
	run := func() exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return x.Execute(context.Background(), []string{"behind-a"}, exe.ExecuteArgs{Cmd: "echo ok"}, emit)
		})["behind-a"]
	}
	ev := run()
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	_, _, pooled := obs.counts()
	require.Equal(t, 2, pooled, "the jump host's connection and the target's through it")

	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		if !strings.Contains(l, fmt.Sprintf("]:%d ", c.a.Port)) {
			kept = append(kept, l)
		}
	}
	require.Len(t, kept, 2)
	rewrite(t, kh, kept...)
	ev = run()
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Equal(t, fmt.Sprintf("jump host jump-a (%s@127.0.0.1:%d): host key unknown: 127.0.0.1:%d is not in known_hosts", c.a.User, c.a.Port, c.a.Port), ev.Msg)
	_, _, pooled = obs.counts()
	assert.Equal(t, 0, pooled)
}

// Under StrictHostKeyChecking accept-new, the key exed itself adds is
// trusted by its pooled connection (no new connection for it), and a
// line an operator removes is added back by the next connection, as ssh
// would add it.
func TestAcceptNewFollowsKnownHosts(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	cfg := writeFile(t, filepath.Join(dir, "ssh_config"), fmt.Sprintf(
		"Host fresh\n    HostName 127.0.0.1\n    Port %d\n    StrictHostKeyChecking accept-new\n    UserKnownHostsFile %s\n", s.Port, kh))
	obs := &dials{}
	x := newCfgExec(t, "fresh\n", sshnative.Config{Observer: obs, SSH: sshnative.SSHOptions{
		SSHConfig: cfg, User: s.User, KeyFiles: []string{s.ClientKey}, NoAgent: true}})
	run := func() {
		t.Helper()
		ev := collect(t, func(emit exe.Emit) error {
			return x.Execute(context.Background(), []string{"fresh"}, exe.ExecuteArgs{Cmd: "echo ok"}, emit)
		})["fresh"]
		require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	}
	added := func() string {
		t.Helper()
		b, err := os.ReadFile(kh)
		require.NoError(t, err)
		return string(b)
	}
	run()
	require.Equal(t, s.KnownHostsLine(s.HostKey)+"\n", added())
	run()
	dialed, _, _ := obs.counts()
	assert.Equal(t, 1, dialed, "the pooled connection is reused: the line exed added trusts it")

	rewrite(t, kh)
	run()
	assert.Equal(t, s.KnownHostsLine(s.HostKey)+"\n", added(), "added back, as ssh adds it")
	dialed, _, _ = obs.counts()
	assert.Equal(t, 2, dialed)
}

// known_hosts is parsed again only when one of its files changed (another
// file, other contents, size or modification time): not for every
// connection.
func TestKnownHostsParsedOnlyWhenChanged(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	h := newKHHost(t, s)
	// A file written long ago: its time tells every later change.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(h.kh, old, old))
	h.ok(t, "a")
	parses := sshnative.KnownHostsParses(h.x)
	require.NotZero(t, parses)
	h.ok(t, "b") // a new connection
	h.ok(t, "a") // a pooled one
	h.ok(t, "b")
	assert.Equal(t, parses, sshnative.KnownHostsParses(h.x))

	f, err := os.OpenFile(h.kh, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintln(f, knownhosts.Line([]string{"other.example"}, s.HostKey))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	h.ok(t, "a")
	assert.Equal(t, parses+1, sshnative.KnownHostsParses(h.x), "the file grew")
}

// A pooled connection whose host key known_hosts no longer trusts is not
// handed out, but a command already running over it runs to its end; the
// connection closes after it.
func TestKnownHostsEditSparesRunningCommands(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	h := newKHHost(t, s)
	dir := s.WritableDir(t)
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	done := make(chan exe.Event, 1)
	go func() {
		var ev exe.Event
		err := h.x.Execute(context.Background(), []string{"a"}, exe.ExecuteArgs{
			Cmd: fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done; echo done", started, release)},
			func(e exe.Event) { ev = e })
		assert.NoError(t, err)
		done <- ev
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, 10*time.Second, 10*time.Millisecond)

	rewrite(t, h.kh)
	ev := h.run(t, "a")
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Equal(t, fmt.Sprintf("host key unknown: 127.0.0.1:%d is not in known_hosts", s.Port), ev.Msg)
	_, _, pooled := h.obs.counts()
	assert.Equal(t, 1, pooled, "open while the command runs")

	require.NoError(t, os.WriteFile(release, nil, 0o666))
	ev = <-done
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	assert.Equal(t, "done\n", ev.Exec.Stdout)
	_, _, pooled = h.obs.counts()
	assert.Equal(t, 0, pooled, "closed once the command ended")
}

// A reload of the plugin (SIGHUP: exed sends the section again) applies
// the section's known_hosts files, as it applies its inventory; a file
// that does not exist is refused, and the files in use stay. The files'
// contents follow without a reload.
func TestPluginReloadFollowsKnownHosts(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	hosts := writeFile(t, filepath.Join(dir, "hosts"), fmt.Sprintf("a ansible_host=127.0.0.1 ansible_port=%d\n", s.Port))
	line := s.KnownHostsLine(s.HostKey)
	unrelated := knownhosts.Line([]string{"other.example"}, s.HostKey)
	trusting := writeFile(t, filepath.Join(dir, "trusting"), line+"\n")
	other := writeFile(t, filepath.Join(dir, "other"), unrelated+"\n")
	section := func(known string) map[string]string {
		return map[string]string{"inventory": hosts, "ansible_config": "none", "ssh_config": "none", "remote_user": s.User,
			"private_key_file": s.ClientKey, "use_agent": "false", "known_hosts": known}
	}
	p := &sshnative.Plugin{}
	require.NoError(t, p.Configure(context.Background(), section(trusting)))
	t.Cleanup(func() { _ = p.Close() })
	run := func() exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return p.Execute(context.Background(), []string{"a"}, exe.ExecuteArgs{Cmd: "echo ok"}, emit)
		})["a"]
	}
	unknown := fmt.Sprintf("host key unknown: 127.0.0.1:%d is not in known_hosts", s.Port)
	ev := run()
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)

	rewrite(t, trusting, unrelated)
	assert.Equal(t, unknown, run().Msg, "the file edited: refused without a reload")
	require.NoError(t, p.Configure(context.Background(), section(trusting)))
	assert.Equal(t, unknown, run().Msg, "and after one")
	rewrite(t, trusting, line)
	ev = run()
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)

	require.NoError(t, p.Configure(context.Background(), section(other)))
	assert.Equal(t, unknown, run().Msg, "the section names another file")
	missing := filepath.Join(dir, "missing")
	err := p.Configure(context.Background(), section(missing))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "known_hosts file "+missing)
	assert.Equal(t, unknown, run().Msg, "the files in use stay")
	require.NoError(t, p.Configure(context.Background(), section(trusting)))
	ev = run()
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
}

// A reload of the plugin (SIGHUP) reads the ssh_config files again, as
// ssh reads them for every connection: a host's HostName and Port
// changed there apply to the operations that start after it. A file that
// no longer parses is refused, and the files as read before stay.
func TestPluginReloadReadsSSHConfigAgain(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	hosts := writeFile(t, filepath.Join(dir, "hosts"), "web\n")
	cfg := writeFile(t, filepath.Join(dir, "ssh_config"), fmt.Sprintf("Host web\n  HostName 127.0.0.1\n  Port %d\n", closedPort(t)))
	known := writeFile(t, filepath.Join(dir, "known_hosts"), s.KnownHostsLine(s.HostKey)+"\n")
	section := map[string]string{"inventory": hosts, "ansible_config": "none", "ssh_config": cfg, "remote_user": s.User,
		"private_key_file": s.ClientKey, "use_agent": "false", "known_hosts": known}
	p := &sshnative.Plugin{}
	require.NoError(t, p.Configure(context.Background(), section))
	t.Cleanup(func() { _ = p.Close() })
	run := func() exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return p.Execute(context.Background(), []string{"web"}, exe.ExecuteArgs{Cmd: "echo ok"}, emit)
		})["web"]
	}
	ev := run()
	require.Equal(t, exe.HostUnreachable, ev.Status, "ssh_config's port is closed: %s", ev.Msg)

	rewrite(t, cfg, "Host web", "  HostName 127.0.0.1", fmt.Sprintf("  Port %d", s.Port))
	require.NoError(t, p.Configure(context.Background(), section))
	ev = run()
	require.Equal(t, exe.HostChanged, ev.Status, "ssh_config's port after the reload: %s", ev.Msg)

	rewrite(t, cfg, `Match exec "true"`, "  Port 1")
	err := p.Configure(context.Background(), section)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ssh_config "+cfg+":1: ")
	ev = run()
	assert.Equal(t, exe.HostChanged, ev.Status, "the files as read before stay: %s", ev.Msg)
}
