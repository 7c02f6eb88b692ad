package rollingrestart_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/rollingrestart"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fleet is five "hosts" (127.0.0.1-5, one real sshd listening on each)
// with a test daemon behind a real SysV init script. The script tells the
// hosts apart by the address the SSH session came in on, so each host has
// a daemon (and pid file) of its own.
type fleet struct {
	x       *sshnative.Executor
	service string
	dir     string
	hosts   []string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	testenv.NeedRoot(t)
	_, err := os.Stat("/etc/init.d")
	testenv.Need(t, err == nil, "/etc/init.d")
	_, err = os.Stat("/run/systemd/system")
	testenv.Need(t, err != nil, "a host not run by systemd (the test installs a SysV init script)")

	var extra []string
	for i := 2; i <= 5; i++ {
		extra = append(extra, fmt.Sprintf("ListenAddress 127.0.0.%d", i))
	}
	// Managing services needs root.
	s := sshtest.Start(t, sshtest.Options{CurrentUser: true, ExtraConfig: extra})
	kh, err := os.OpenFile(s.KnownHosts, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	var inv strings.Builder
	inv.WriteString("[fleet]\n")
	f := &fleet{dir: t.TempDir(), service: fmt.Sprintf("exe-rr-%d", time.Now().UnixNano())}
	for i := 1; i <= 5; i++ {
		addr := fmt.Sprintf("127.0.0.%d", i)
		if i > 1 {
			_, err = fmt.Fprintln(kh, knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("%s:%d", addr, s.Port))}, s.HostKey))
			require.NoError(t, err)
		}
		fmt.Fprintf(&inv, "h%d ansible_host=%s ansible_port=%d\n", i, addr, s.Port)
		f.hosts = append(f.hosts, fmt.Sprintf("h%d", i))
	}
	require.NoError(t, kh.Close())
	parsed, err := inventory.Parse(strings.NewReader(inv.String()), "fleet.ini")
	require.NoError(t, err)
	f.x, err = sshnative.New(sshnative.Config{Inventory: parsed, Forks: 5, SSH: sshnative.SSHOptions{
		User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}, NoAgent: true}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.x.Close() })

	script := fmt.Sprintf(`#!/bin/sh
DIR=%s
# Which test host is this? The address of the SSH session of an ancestor.
host=none; p=$$
while [ "$p" -gt 1 ]; do
	conn=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')
	if [ -n "$conn" ]; then host=$(echo "$conn" | cut -d' ' -f3); break; fi
	p=$(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f2)
done
PIDFILE=$DIR/$host.pid
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "$1" in
start) running && exit 0; sleep 100000 >/dev/null 2>&1 </dev/null & echo $! > "$PIDFILE"; echo "$host" >> "$DIR/starts.log" ;;
stop) running && kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE" ;;
restart) "$0" stop; "$0" start ;;
reload) running || exit 7 ;;
status) running ;;
*) exit 2 ;;
esac
`, f.dir)
	path := "/etc/init.d/" + f.service
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	t.Cleanup(func() {
		_ = f.x.Service(context.Background(), f.hosts, exe.ServiceArgs{Name: f.service, State: exe.ServiceStopped}, func(exe.Event) {})
		_ = os.Remove(path)
	})
	// Start every host's daemon.
	require.NoError(t, f.x.Service(context.Background(), f.hosts, exe.ServiceArgs{Name: f.service, State: exe.ServiceStarted},
		func(ev exe.Event) { require.Equal(t, exe.HostChanged, ev.Status, "%s: %s", ev.Host, ev.Msg) }))
	require.NoError(t, os.Remove(filepath.Join(f.dir, "starts.log")))
	return f
}

// pids is each host's daemon pid, by address.
func (f *fleet) pids(t *testing.T) map[string]string {
	out := map[string]string{}
	for i := 1; i <= 5; i++ {
		b, err := os.ReadFile(filepath.Join(f.dir, fmt.Sprintf("127.0.0.%d.pid", i)))
		require.NoError(t, err)
		out[fmt.Sprintf("h%d", i)] = strings.TrimSpace(string(b))
	}
	return out
}

// starts is the order in which hosts' daemons were (re)started.
func (f *fleet) starts(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(f.dir, "starts.log"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, addr := range strings.Fields(string(b)) {
		out = append(out, "h"+addr[strings.LastIndexByte(addr, '.')+1:])
	}
	return out
}

type run struct {
	mu  sync.Mutex
	evs []exe.Event
}

func (r *run) emit(ev exe.Event) { r.mu.Lock(); r.evs = append(r.evs, ev); r.mu.Unlock() }

func (r *run) of(host string) []exe.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exe.Event
	for _, ev := range r.evs {
		if ev.Host == host {
			out = append(out, ev)
		}
	}
	return out
}

// opts validates options as POST /tasks does, defaults filled in.
func opts(t *testing.T, o map[string]any) exe.TaskArgs {
	info, err := rollingrestart.Task{}.Info(context.Background())
	require.NoError(t, err)
	v, err := info.Options.Validate(o)
	require.NoError(t, err)
	return exe.TaskArgs{Type: "rollingrestart", Options: v}
}

func sameSet(t *testing.T, want, got []string, msg string) {
	t.Helper()
	assert.ElementsMatch(t, want, got, msg)
}

func TestBatchesRestartInOrder(t *testing.T) {
	f := newFleet(t)
	before := f.pids(t)
	var r run
	err := rollingrestart.Task{}.Run(context.Background(), f.x, f.hosts, opts(t, map[string]any{
		"service": f.service, "batch": 2.0, "health_cmd": "true"}), r.emit)
	require.NoError(t, err)
	after := f.pids(t)
	for _, h := range f.hosts {
		assert.NotEqual(t, before[h], after[h], "%s was restarted: a new process", h)
		evs := r.of(h)
		require.Len(t, evs, 2, h)
		assert.Equal(t, "restart", evs[0].Name)
		assert.Equal(t, exe.HostChanged, evs[0].Status)
		assert.Equal(t, "health check", evs[1].Name)
		assert.Equal(t, exe.HostOK, evs[1].Status)
	}
	starts := f.starts(t)
	require.Len(t, starts, 5)
	sameSet(t, []string{"h1", "h2"}, starts[0:2], "batch 1 first")
	sameSet(t, []string{"h3", "h4"}, starts[2:4], "then batch 2")
	assert.Equal(t, "h5", starts[4])
	var batches []string
	for _, ev := range r.of(exe.AnnounceHost) {
		batches = append(batches, ev.Name+": "+ev.Msg)
	}
	assert.Equal(t, []string{"batch 1/3: h1, h2", "batch 2/3: h3, h4", "batch 3/3: h5"}, batches)
}

const failOnH3 = `case "$SSH_CONNECTION" in *" 127.0.0.3 "*) echo sick >&2; exit 1;; esac`

func TestFailingHealthCheckStopsTheRollout(t *testing.T) {
	f := newFleet(t)
	before := f.pids(t)
	var r run
	err := rollingrestart.Task{}.Run(context.Background(), f.x, f.hosts, opts(t, map[string]any{
		"service": f.service, "batch": "40%", "health_cmd": failOnH3, "health_retries": 1.0, "health_interval": 0.05}), r.emit)
	require.EqualError(t, err, "rollout stopped at batch 2/3: 1 hosts failed, max_fail is 0")
	h3 := r.of("h3")
	last := h3[len(h3)-1]
	assert.Equal(t, exe.HostFailed, last.Status)
	assert.Equal(t, "unhealthy after 2 attempts", last.Msg)
	assert.Equal(t, "sick\n", last.Exec.Stderr)
	h5 := r.of("h5")
	require.Len(t, h5, 1)
	assert.Equal(t, exe.HostSkipped, h5[0].Status)
	assert.Equal(t, "not restarted: the rollout stopped after 1 failed hosts (max_fail 0)", h5[0].Msg)
	assert.Equal(t, before["h5"], f.pids(t)["h5"], "h5 untouched")
	sameSet(t, []string{"h1", "h2", "h3", "h4"}, f.starts(t), "batches 1 and 2 only")
}

func TestMaxFailPercentageLetsTheRolloutContinue(t *testing.T) {
	f := newFleet(t)
	var r run
	// 20% of 5 hosts: one failure is allowed.
	err := rollingrestart.Task{}.Run(context.Background(), f.x, f.hosts, opts(t, map[string]any{
		"service": f.service, "batch": 2.0, "health_cmd": failOnH3, "max_fail": "20%"}), r.emit)
	require.NoError(t, err)
	assert.Len(t, f.starts(t), 5, "every host restarted")
	assert.Equal(t, exe.HostFailed, r.of("h3")[1].Status)
}

func TestCancelBetweenBatches(t *testing.T) {
	f := newFleet(t)
	before := f.pids(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var r run
	go func() {
		done <- rollingrestart.Task{}.Run(ctx, f.x, f.hosts, opts(t, map[string]any{
			"service": f.service, "batch": 2.0, "pause": 60.0}), func(ev exe.Event) {
			r.emit(ev)
			if ev.Host == "h2" || ev.Host == "h1" {
				if len(r.of("h1")) == 1 && len(r.of("h2")) == 1 {
					cancel() // batch 1 is done; the task now pauses
				}
			}
		})
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not stop on cancel")
	}
	after := f.pids(t)
	for _, h := range []string{"h3", "h4", "h5"} {
		assert.Equal(t, before[h], after[h], "%s untouched", h)
		assert.Equal(t, []exe.Event{{Host: h, Status: exe.HostSkipped, Msg: "cancelled before start"}}, r.of(h), "the task says %s never started", h)
	}
	sameSet(t, []string{"h1", "h2"}, f.starts(t), "only batch 1 ran")
}

// A cancel during a health check: the check ends FAILED "cancelled" with
// what it printed, its processes are stopped (it ignores SIGHUP), and the
// later batches never start, which the task says: SKIPPED "cancelled
// before start".
func TestCancelInterruptsHealthCheck(t *testing.T) {
	f := newFleet(t)
	pidFile := filepath.Join(f.dir, "check.pid")
	check := fmt.Sprintf(`echo checking; trap '' HUP; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 1; done`, pidFile)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan error, 1)
	var r run
	go func() {
		done <- rollingrestart.Task{}.Run(ctx, f.x, f.hosts, opts(t, map[string]any{
			"service": f.service, "batch": 1.0, "health_cmd": check}), r.emit)
	}()
	pid := testenv.WaitPIDFile(t, pidFile, 30*time.Second)
	cancel(exe.ErrCancelled)
	select {
	case err := <-done:
		assert.ErrorIs(t, err, exe.ErrCancelled)
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not stop on cancel")
	}
	h1 := r.of("h1")
	require.Len(t, h1, 2)
	assert.Equal(t, "restart", h1[0].Name)
	assert.Equal(t, exe.Event{Host: "h1", Status: exe.HostFailed, Name: "health check", Msg: "cancelled",
		Exec: &exe.ExecResult{RTC: -1, Stdout: "checking\n"}}, h1[1])
	for _, h := range f.hosts[1:] {
		assert.Equal(t, []exe.Event{{Host: h, Status: exe.HostSkipped, Msg: "cancelled before start"}}, r.of(h), "%s was never started", h)
	}
	sameSet(t, []string{"h1"}, f.starts(t), "only h1 was restarted")
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || zombie(pid)
	}, 10*time.Second, 10*time.Millisecond, "the interrupted health check's process is gone")
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func TestOptionsValidation(t *testing.T) {
	info, err := rollingrestart.Task{}.Info(context.Background())
	require.NoError(t, err)
	for o, msg := range map[string]string{
		`{"batch": 2}`:                            `taskopts: option "service" is required`,
		`{"service": "x", "batch": "abc"}`:        `taskopts: option "batch": "abc" does not match ^[0-9]+%$`,
		`{"service": "x", "batch": 0}`:            `taskopts: option "batch" must be at least 1`,
		`{"service": "x", "max_fail": "5"}`:       `taskopts: option "max_fail": "5" does not match ^[0-9]+%$`,
		`{"service": "x; reboot"}`:                `taskopts: option "service": "x; reboot" does not match ^[A-Za-z0-9_][A-Za-z0-9_.@:-]*$`,
		`{"service": "x", "pause": -1}`:           `taskopts: option "pause" must be at least 0`,
		`{"service": "x", "graceful": "yes"}`:     `taskopts: option "graceful" must be of type boolean`,
		`{"service": "x", "health_retries": 1.5}`: `taskopts: option "health_retries" must be of type integer`,
		// Past a time.Duration's range a wait would overflow to none.
		`{"service": "x", "pause": 1e300}`:           `taskopts: option "pause" must be at most 86400`,
		`{"service": "x", "health_interval": 1e300}`: `taskopts: option "health_interval" must be at most 3600`,
		`{"service": "x", "health_retries": 1e300}`:  `taskopts: option "health_retries" must be at most 1000`,
	} {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(o), &m))
		_, err := info.Options.Validate(m)
		assert.EqualError(t, err, msg, o)
	}
	// Options that did not go through the schema are refused by the task.
	err = rollingrestart.Task{}.Run(context.Background(), nil, []string{"h1"}, exe.TaskArgs{Options: map[string]any{
		"service": "x", "batch": 1.0, "max_fail": 0.0, "pause": 1e300}}, func(exe.Event) {})
	assert.EqualError(t, err, `taskopts: option "pause" must be from 0 to 86400`)
}
