package sshnative_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collect runs op and returns its events by host.
func collect(t *testing.T, op func(exe.Emit) error) map[string]exe.Event {
	t.Helper()
	var mu sync.Mutex
	out := map[string]exe.Event{}
	require.NoError(t, op(func(ev exe.Event) {
		mu.Lock()
		defer mu.Unlock()
		_, dup := out[ev.Host]
		assert.False(t, dup, "one event per host for %s", ev.Host)
		out[ev.Host] = ev
	}))
	return out
}

func newExec(t *testing.T, cfg sshnative.Config) *sshnative.Executor {
	t.Helper()
	x, err := sshnative.New(cfg)
	require.NoError(t, err)
	return x
}

func TestMatchDefaultInventory(t *testing.T) {
	x := newExec(t, sshnative.Config{})
	ctx := context.Background()
	for _, p := range []string{"*", "all", "localhost", "local*", "localhost,nothere"} {
		got, err := x.Match(ctx, p)
		require.NoError(t, err)
		assert.Equal(t, []string{"localhost"}, got, p)
	}
	got, err := x.Match(ctx, "web*")
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = x.Match(ctx, "~(")
	assert.ErrorIs(t, err, exe.ErrInvalid)
}

func TestPing(t *testing.T) {
	x := newExec(t, sshnative.Config{})
	evs := collect(t, func(emit exe.Emit) error {
		return x.Ping(context.Background(), []string{"localhost", "ghost"}, emit)
	})
	assert.Equal(t, exe.HostOK, evs["localhost"].Status)
	assert.Equal(t, exe.HostUnreachable, evs["ghost"].Status)
	assert.Contains(t, evs["ghost"].Msg, "not in the inventory")
}

func TestFacter(t *testing.T) {
	x := newExec(t, sshnative.Config{})
	evs := collect(t, func(emit exe.Emit) error {
		return x.Facter(context.Background(), []string{"localhost"}, emit)
	})
	ev := evs["localhost"]
	require.Equal(t, exe.HostOK, ev.Status, ev.Msg)
	host, err := os.Hostname()
	require.NoError(t, err)
	var uts syscall.Utsname
	require.NoError(t, syscall.Uname(&uts))
	assert.Equal(t, host, ev.Facts["hostname"])
	assert.Equal(t, utsString(uts.Release[:]), ev.Facts["kernel"])
	assert.Equal(t, utsString(uts.Machine[:]), ev.Facts["architecture"])
	assert.EqualValues(t, runtime.NumCPU(), ev.Facts["processor_count"])
	for _, k := range []string{"fqdn", "distribution", "distribution_version"} {
		assert.NotEmpty(t, ev.Facts[k], k)
	}
	assert.Greater(t, ev.Facts["memtotal_mb"], 0.0)
	assert.Greater(t, ev.Facts["uptime_seconds"], 0.0)
	assert.Contains(t, ev.Facts["ipv4_addresses"], "127.0.0.1")
}

func utsString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

func TestExecute(t *testing.T) {
	x := newExec(t, sshnative.Config{})
	ctx := context.Background()
	run := func(cmd string) exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return x.Execute(ctx, []string{"localhost"}, exe.ExecuteArgs{Cmd: cmd}, emit)
		})["localhost"]
	}
	ev := run("echo hi; echo oops >&2")
	assert.Equal(t, exe.HostChanged, ev.Status)
	require.NotNil(t, ev.Exec)
	assert.Equal(t, exe.ExecResult{RTC: 0, Stdout: "hi\n", Stderr: "oops\n"}, *ev.Exec)
	assert.False(t, ev.Truncated)

	ev = run("echo partial; exit 3")
	assert.Equal(t, exe.HostFailed, ev.Status)
	assert.Equal(t, 3, ev.Exec.RTC)
	assert.Equal(t, "partial\n", ev.Exec.Stdout)

	// The command is data for sh -c: quotes and metacharacters reach the
	// shell unchanged, and nothing outside the command runs.
	ev = run(`printf '%s|' "a b" 'c"d' '$(id)'`)
	assert.Equal(t, `a b|c"d|$(id)|`, ev.Exec.Stdout)
}

func TestExecuteOutputCap(t *testing.T) {
	x := newExec(t, sshnative.Config{OutputCap: 1000})
	ev := collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), []string{"localhost"},
			exe.ExecuteArgs{Cmd: "head -c 100000 /dev/zero | tr '\\0' x; echo small >&2"}, emit)
	})["localhost"]
	assert.Equal(t, exe.HostChanged, ev.Status, "a capped command still runs to completion")
	assert.Len(t, ev.Exec.Stdout, 1000)
	assert.Equal(t, "small\n", ev.Exec.Stderr)
	assert.True(t, ev.Truncated)
}

func TestExecuteCancelKillsProcessTree(t *testing.T) {
	x := newExec(t, sshnative.Config{})
	pid := cancelSleep(t, x, "localhost", filepath.Join(t.TempDir(), "pid"))
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
	}, 5*time.Second, 10*time.Millisecond, "the grandchild sleep must be killed with its group")
}

// cancelSleep runs a command on host that starts a background sleep and
// reports its pid through pidFile, cancels it once the sleep runs, checks
// the cancelled event, and returns the sleep's pid.
func cancelSleep(t *testing.T, x *sshnative.Executor, host, pidFile string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan exe.Event, 1)
	go func() {
		_ = x.Execute(ctx, []string{host}, exe.ExecuteArgs{
			Cmd: fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile)}, func(ev exe.Event) { done <- ev })
	}()
	pid := testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	cancel()
	select {
	case ev := <-done:
		assert.Equal(t, exe.HostFailed, ev.Status)
		assert.Equal(t, "cancelled", ev.Msg)
	case <-time.After(10 * time.Second):
		t.Fatal("execute did not return after cancel")
	}
	return pid
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] == "Z"
}

func TestCommandTimeout(t *testing.T) {
	x := newExec(t, sshnative.Config{CommandTimeout: 200 * time.Millisecond})
	ev := collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), []string{"localhost"}, exe.ExecuteArgs{Cmd: "sleep 30"}, emit)
	})["localhost"]
	assert.Equal(t, exe.HostFailed, ev.Status)
	assert.Equal(t, "command timed out", ev.Msg)
}

func TestServiceRejectsBadNames(t *testing.T) {
	x := newExec(t, sshnative.Config{})
	for _, name := range []string{"", "a b", "x;touch /tmp/pwned", "$(id)", "../../etc/passwd"} {
		err := x.Service(context.Background(), []string{"localhost"}, exe.ServiceArgs{Name: name}, func(exe.Event) {
			t.Errorf("nothing may run for %q", name)
		})
		assert.ErrorIs(t, err, exe.ErrInvalid, name)
	}
}

// installInitScript installs a real SysV init script for a tiny daemon
// (a sleep) under a unique name and removes it, and the daemon, afterwards.
func installInitScript(t *testing.T) (name, pidFile string) {
	testenv.NeedRoot(t)
	testenv.Need(t, dirExists("/etc/init.d"), "/etc/init.d")
	_, err := os.Stat("/run/systemd/system")
	testenv.Need(t, err != nil, "a host not run by systemd (the test installs a SysV init script)")
	name = fmt.Sprintf("exe-test-%d", time.Now().UnixNano())
	pidFile = filepath.Join(t.TempDir(), "daemon.pid")
	script := fmt.Sprintf(`#!/bin/sh
PIDFILE=%s
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "$1" in
start) running && exit 0; sleep 100000 >/dev/null 2>&1 </dev/null & echo $! > "$PIDFILE" ;;
stop) running && kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE" ;;
restart) "$0" stop; "$0" start ;;
reload) running || exit 7; echo reloaded >> "$PIDFILE.reloads" ;;
status) running ;;
*) echo "usage: $0 start|stop|restart|reload|status" >&2; exit 2 ;;
esac
`, pidFile)
	path := "/etc/init.d/" + name
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = os.Remove(path)
	})
	return name, pidFile
}

func dirExists(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }

func TestServiceLifecycle(t *testing.T) {
	name, pidFile := installInitScript(t)
	x := newExec(t, sshnative.Config{})
	svc := func(state exe.ServiceState, graceful bool) exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return x.Service(context.Background(), []string{"localhost"},
				exe.ServiceArgs{Name: name, State: state, Graceful: graceful}, emit)
		})["localhost"]
	}
	pid := func() string { b, _ := os.ReadFile(pidFile); return strings.TrimSpace(string(b)) }

	ev := svc(exe.ServiceStarted, false)
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	first := pid()
	require.NotEmpty(t, first)
	assert.Equal(t, exe.HostOK, svc(exe.ServiceStarted, false).Status, "starting a running service changes nothing")
	assert.Equal(t, first, pid())

	assert.Equal(t, exe.HostChanged, svc(exe.ServiceRestarted, false).Status)
	second := pid()
	assert.NotEmpty(t, second)
	assert.NotEqual(t, first, second, "restart starts a new process")

	assert.Equal(t, exe.HostChanged, svc(exe.ServiceRestarted, true).Status, "graceful restart reloads")
	assert.Equal(t, second, pid(), "reload keeps the process")
	reloads, err := os.ReadFile(pidFile + ".reloads")
	require.NoError(t, err)
	assert.Equal(t, "reloaded\n", string(reloads))

	assert.Equal(t, exe.HostChanged, svc(exe.ServiceStopped, false).Status)
	assert.Empty(t, pid())
	assert.Equal(t, exe.HostOK, svc(exe.ServiceStopped, false).Status, "stopping a stopped service changes nothing")

	ev = svc(exe.ServiceRestarted, true)
	assert.Equal(t, exe.HostFailed, ev.Status, "reloading a stopped service fails")
	assert.Contains(t, ev.Msg, "exit 7")
}

func TestServiceUnknown(t *testing.T) {
	testenv.NeedRoot(t)
	x := newExec(t, sshnative.Config{})
	ev := collect(t, func(emit exe.Emit) error {
		return x.Service(context.Background(), []string{"localhost"},
			exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceRestarted}, emit)
	})["localhost"]
	assert.Equal(t, exe.HostFailed, ev.Status)
	assert.Contains(t, ev.Msg, "restarted exe-no-such-service failed")
}

func TestInventoryHostsWithoutLocalConnection(t *testing.T) {
	inv, err := inventory.Parse(strings.NewReader("[web]\nweb[1:2]\n[local]\nbox ansible_connection=local\n"), "t")
	require.NoError(t, err)
	x := newExec(t, sshnative.Config{Inventory: inv})
	hosts, err := x.Match(context.Background(), "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"box", "web1", "web2"}, hosts)
	evs := collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), []string{"box", "web1"}, exe.ExecuteArgs{Cmd: "echo local"}, emit)
	})
	assert.Equal(t, "local\n", evs["box"].Exec.Stdout, "ansible_connection=local runs here")
	assert.Equal(t, exe.HostUnreachable, evs["web1"].Status, "web1 is reached over SSH, and is not there")
}
