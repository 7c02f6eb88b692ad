package sshnative_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fleet is a real sshd plus an inventory of aliases pointing at it and at
// hosts that fail in each way the executor classifies.
type fleet struct {
	server *sshtest.Server
	exec   *sshnative.Executor
	inv    *inventory.Inventory
}

func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// silentListener accepts TCP connections and never says a word: the
// "timeout" host.
func silentListener(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func newFleet(t *testing.T, aliases int, opts sshnative.Config) *fleet {
	t.Helper()
	return newFleetAs(t, aliases, opts, false)
}

// newFleetAs is newFleet; currentUser logs in as the user running the tests.
func newFleetAs(t *testing.T, aliases int, opts sshnative.Config, currentUser bool) *fleet {
	t.Helper()
	s := sshtest.Start(t, sshtest.Options{CurrentUser: currentUser, ExtraConfig: []string{"ListenAddress 127.0.0.2"}})
	// 127.0.0.2 serves the same sshd, but known_hosts holds a wrong key
	// for it: the "mismatch" host.
	_, wrong, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	wrongPub, err := ssh.NewPublicKey(wrong.Public())
	require.NoError(t, err)
	kh, err := os.OpenFile(s.KnownHosts, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintln(kh, knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("127.0.0.2:%d", s.Port))}, wrongPub))
	require.NoError(t, err)
	require.NoError(t, kh.Close())

	var b strings.Builder
	fmt.Fprintf(&b, "[fleet]\nh[01:%02d] ansible_host=127.0.0.1 ansible_port=%d\n", aliases, s.Port)
	fmt.Fprintf(&b, "[broken]\nrefused ansible_host=127.0.0.1 ansible_port=%d\n", closedPort(t))
	fmt.Fprintf(&b, "silent ansible_host=127.0.0.1 ansible_port=%d\n", silentListener(t))
	fmt.Fprintf(&b, "mismatch ansible_host=127.0.0.2 ansible_port=%d\n", s.Port)
	fmt.Fprintf(&b, "noauth ansible_host=127.0.0.1 ansible_port=%d ansible_user=exe-no-such-user\n", s.Port)
	b.WriteString("nodns ansible_host=host.that.does.not.exist.invalid\n")
	// A login shell that is not POSIX sh: exed starts /bin/sh itself.
	fmt.Fprintf(&b, "[othershell]\nviash ansible_host=127.0.0.1 ansible_port=%d ansible_shell_type=fish\n", s.Port)
	inv, err := inventory.Parse(strings.NewReader(b.String()), "fleet.ini")
	require.NoError(t, err)
	opts.Inventory = inv
	opts.SSH.User = s.User
	opts.SSH.KeyFiles = []string{s.ClientKey}
	opts.SSH.KnownHosts = []string{s.KnownHosts}
	opts.SSH.NoAgent = true
	if opts.SSH.ConnectTimeout == 0 {
		opts.SSH.ConnectTimeout = 2 * time.Second
	}
	x, err := sshnative.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	return &fleet{server: s, exec: x, inv: inv}
}

func (f *fleet) hosts(t *testing.T, pattern string) []string {
	hosts, err := f.exec.Match(context.Background(), pattern)
	require.NoError(t, err)
	return hosts
}

func TestSSHOperations(t *testing.T) {
	f := newFleet(t, 3, sshnative.Config{OutputCap: 64})
	ctx := context.Background()
	hosts := f.hosts(t, "fleet")
	require.Len(t, hosts, 3)

	evs := collect(t, func(emit exe.Emit) error { return f.exec.Ping(ctx, hosts, emit) })
	for _, h := range hosts {
		assert.Equal(t, exe.HostOK, evs[h].Status, "%s: %s", h, evs[h].Msg)
	}

	evs = collect(t, func(emit exe.Emit) error {
		return f.exec.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: `printf '%s|' "a b" '$(id)'; echo err >&2; exit 7`}, emit)
	})
	for _, h := range hosts {
		ev := evs[h]
		assert.Equal(t, exe.HostFailed, ev.Status)
		require.NotNil(t, ev.Exec)
		assert.Equal(t, exe.ExecResult{RTC: 7, Stdout: "a b|$(id)|", Stderr: "err\n"}, *ev.Exec, "quoting survives the remote shell")
	}
	evs = collect(t, func(emit exe.Emit) error {
		return f.exec.Execute(ctx, hosts[:1], exe.ExecuteArgs{Cmd: "head -c 5000 /dev/zero | tr '\\0' y"}, emit)
	})
	assert.Equal(t, exe.HostChanged, evs[hosts[0]].Status)
	assert.Len(t, evs[hosts[0]].Exec.Stdout, 64)
	assert.True(t, evs[hosts[0]].Truncated)

	evs = collect(t, func(emit exe.Emit) error { return f.exec.Facter(ctx, hosts[:1], emit) })
	hostname, _ := os.Hostname()
	assert.Equal(t, exe.HostOK, evs[hosts[0]].Status, evs[hosts[0]].Msg)
	assert.Equal(t, hostname, evs[hosts[0]].Facts["hostname"])

	evs = collect(t, func(emit exe.Emit) error {
		return f.exec.Service(ctx, hosts[:1], exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceRestarted}, emit)
	})
	assert.Equal(t, exe.HostFailed, evs[hosts[0]].Status)
}

func TestSSHServiceLifecycle(t *testing.T) {
	name, pidFile := installInitScript(t)
	f := newFleetAs(t, 1, sshnative.Config{}, true) // managing services needs root
	pid := func() string { b, _ := os.ReadFile(pidFile); return strings.TrimSpace(string(b)) }
	svc := func(state exe.ServiceState) exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return f.exec.Service(context.Background(), []string{"h01"}, exe.ServiceArgs{Name: name, State: state}, emit)
		})["h01"]
	}
	require.Equal(t, exe.HostChanged, svc(exe.ServiceStarted).Status)
	first := pid()
	assert.Equal(t, exe.HostOK, svc(exe.ServiceStarted).Status)
	assert.Equal(t, exe.HostChanged, svc(exe.ServiceRestarted).Status)
	assert.NotEqual(t, first, pid(), "restarted over SSH: a new process")
	assert.Equal(t, exe.HostChanged, svc(exe.ServiceStopped).Status)
}

func TestSSHFailureClasses(t *testing.T) {
	f := newFleet(t, 1, sshnative.Config{})
	start := time.Now()
	var mu sync.Mutex
	var order []string
	evs := map[string]exe.Event{}
	err := f.exec.Ping(context.Background(), []string{"h01", "refused", "silent", "mismatch", "noauth", "nodns"}, func(ev exe.Event) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, ev.Host)
		evs[ev.Host] = ev
	})
	require.NoError(t, err)
	assert.Equal(t, exe.HostOK, evs["h01"].Status, evs["h01"].Msg)
	for host, want := range map[string]string{
		"refused":  "connection refused",
		"silent":   "timed out",
		"mismatch": "host key mismatch",
		"noauth":   "authentication failed",
		"nodns":    "cannot resolve host",
	} {
		assert.Equal(t, exe.HostUnreachable, evs[host].Status, host)
		assert.Contains(t, evs[host].Msg, want, host)
	}
	assert.Equal(t, "silent", order[len(order)-1], "the silent host reports last, after its own timeout")
	assert.Less(t, time.Since(start), 10*time.Second, "one bad host delays nobody beyond its own timeout")
}

func TestSSHPoolReusesConnections(t *testing.T) {
	f := newFleet(t, 5, sshnative.Config{})
	ctx := context.Background()
	hosts := f.hosts(t, "fleet")
	run := func() {
		evs := collect(t, func(emit exe.Emit) error { return f.exec.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: "true"}, emit) })
		for _, h := range hosts {
			require.Equal(t, exe.HostChanged, evs[h].Status, "%s: %s", h, evs[h].Msg)
		}
	}
	run()
	require.Eventually(t, func() bool { return f.server.Connections() == 5 }, 10*time.Second, 10*time.Millisecond,
		"one connection per host alias")
	run()
	collect(t, func(emit exe.Emit) error { return f.exec.Facter(ctx, hosts, emit) })
	// A sentinel connection from outside the pool: once sshd has logged it,
	// every connection the jobs made before it has been logged too.
	sentinel(t, f.server)
	assert.Equal(t, 6, f.server.Connections(), "the second and third operations opened no new connection")

	// sshd restarts between jobs: the pool re-dials transparently.
	f.server.Restart(t)
	run()
}

func sentinel(t *testing.T, s *sshtest.Server) {
	t.Helper()
	before := s.Connections()
	c, err := net.Dial("tcp", net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)))
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return s.Connections() > before }, 10*time.Second, 5*time.Millisecond)
}

func TestSSHCancelStopsRemoteProcesses(t *testing.T) {
	for _, root := range []bool{false, true} {
		t.Run(fmt.Sprintf("root=%v", root), func(t *testing.T) {
			// sshd refuses signal requests for root logins: stopping must
			// not depend on them.
			f := newFleetAs(t, 1, sshnative.Config{}, root)
			for _, host := range []string{"h01", "viash"} {
				pid := cancelSleep(t, f.exec, host, filepath.Join(f.server.WritableDir(t), "pid"))
				require.Eventually(t, func() bool {
					return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
				}, 10*time.Second, 10*time.Millisecond, "%s: the remote sleep must be stopped with its group", host)
			}
		})
	}
}

func TestSSHRemoteShell(t *testing.T) {
	f := newFleet(t, 1, sshnative.Config{})
	ctx := context.Background()
	// viash's login shell is declared fish: the command still runs in sh,
	// with the same quoting and output, and the pid line exed uses for
	// cancelling never reaches the caller.
	evs := collect(t, func(emit exe.Emit) error {
		return f.exec.Execute(ctx, []string{"h01", "viash"}, exe.ExecuteArgs{Cmd: `printf '%s|' "$#" 'it'"'"'s'; echo e1 >&2; printf e2 >&2`}, emit)
	})
	for _, h := range []string{"h01", "viash"} {
		require.NotNil(t, evs[h].Exec, h)
		assert.Equal(t, exe.ExecResult{RTC: 0, Stdout: "0|it's|", Stderr: "e1\ne2"}, *evs[h].Exec, h)
	}
}
