package executor_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bins are the plugin binaries TestMain builds.
var bins map[string]string

func TestMain(m *testing.M) {
	plugintest.Main(m, &bins, map[string]string{
		"testexec":               "./internal/plugintest/testexec",
		"exe-executor-localsh":   "./examples/plugins/exe-executor-localsh",
		"exe-executor-sshnative": "./plugins/sshnative/cmd/exe-executor-sshnative",
	})
}

// syncBuffer is a log sink the plugin's log lines are written to from
// go-plugin's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T, opts executor.Options) (*executor.Client, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Name == "" {
		opts.Name = "testexec"
	}
	if opts.Path == "" {
		opts.Path = bins["testexec"]
	}
	opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "exed", Output: logs, Level: hclog.Debug})
	c, err := executor.Start(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, logs
}

// events collects what an operation emits, in order.
type events struct {
	mu   sync.Mutex
	list []exe.Event
}

func (e *events) emit(ev exe.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) all() []exe.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]exe.Event(nil), e.list...)
}

func TestEveryOperationCrossesTheBoundary(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()

	hosts, err := c.Match(ctx, "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, hosts)
	hosts, err = c.Match(ctx, "nothing")
	require.NoError(t, err)
	assert.Equal(t, []string{}, hosts)
	_, err = c.Match(ctx, "~x")
	assert.ErrorIs(t, err, exe.ErrInvalid, "error kinds survive the boundary")
	assert.EqualError(t, err, "pattern: regexes are not supported here")

	var evs events
	require.NoError(t, c.Ping(ctx, []string{"a", "b"}, evs.emit))
	assert.Equal(t, []exe.Event{{Host: "a", Status: exe.HostOK}, {Host: "b", Status: exe.HostOK}}, evs.all())

	evs = events{}
	require.NoError(t, c.Facter(ctx, []string{"c"}, evs.emit))
	assert.Equal(t, []exe.Event{{Host: "c", Status: exe.HostOK, Facts: map[string]any{"hostname": "c", "cpus": 2.0}}}, evs.all())

	evs = events{}
	require.NoError(t, c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "hello 'world'"}, evs.emit))
	assert.Equal(t, []exe.Event{{Host: "a", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: "hello 'world'"}}}, evs.all())

	err = c.Service(ctx, []string{"a"}, exe.ServiceArgs{Name: "x", State: exe.ServiceStarted}, evs.emit)
	assert.ErrorIs(t, err, exe.ErrNotSupported)
	assert.ErrorIs(t, c.Deploy(ctx, []string{"a"}, exe.DeployArgs{Role: "r"}, evs.emit), exe.ErrNotSupported)

	err = c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "fail"}, evs.emit)
	assert.EqualError(t, err, "testexec: failed on request")
	assert.NoError(t, c.Health(ctx))
}

func TestStreamKeepsOrder(t *testing.T) {
	c, _ := start(t, executor.Options{})
	var evs events
	require.NoError(t, c.Execute(context.Background(), []string{"a", "b"}, exe.ExecuteArgs{Cmd: "stream 500"}, evs.emit))
	next := map[string]float64{"a": 1, "b": 1}
	list := evs.all()
	require.Len(t, list, 1000)
	for _, ev := range list {
		require.Equal(t, next[ev.Host], ev.Extra["n"], "host %s", ev.Host)
		next[ev.Host]++
	}
}

func TestEventsArriveAsEmitted(t *testing.T) {
	c, _ := start(t, executor.Options{})
	fifo := filepath.Join(t.TempDir(), "gate")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	var names []string
	err := c.Execute(context.Background(), []string{"a"}, exe.ExecuteArgs{Cmd: "gate " + fifo}, func(ev exe.Event) {
		names = append(names, ev.Name)
		if ev.Name == "before" {
			// The plugin is blocked on the pipe until this write: the
			// first event reached us while the operation still ran.
			require.NoError(t, os.WriteFile(fifo, []byte("go"), 0o600))
		}
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"before", "after"}, names)
}

func TestCancelReachesThePlugin(t *testing.T) {
	marker := t.TempDir()
	c, _ := start(t, executor.Options{Config: map[string]string{"marker_dir": marker}})
	cancel, done := executeBlocking(c)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(marker, "cancelled"))
		return err == nil && string(b) == "context canceled"
	}, 5*time.Second, 5*time.Millisecond, "the plugin's context was cancelled")
}

// What a plugin reports about the work a cancel interrupted (the hosts it
// stopped, their partial output) reaches the caller, with the cancel's
// cause or the caller's deadline.
func TestInterruptedWorkIsReported(t *testing.T) {
	c, _ := start(t, executor.Options{})
	run := func(t *testing.T, ctx context.Context, onStart func(), cause string) {
		t.Helper()
		var evs events
		err := c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "block"}, func(ev exe.Event) {
			evs.emit(ev)
			if ev.Name == "started" {
				onStart()
			}
		})
		assert.ErrorIs(t, err, ctx.Err())
		list := evs.all()
		require.Len(t, list, 2, "the event the interruption produced arrived")
		assert.Equal(t, exe.Event{Host: "a", Status: exe.HostFailed, Name: "stopped", Msg: cause}, list[1])
	}
	for _, cause := range []error{exe.ErrCancelled, exe.ErrShutdown, exe.ErrWorkerLost, exe.ErrLeaseLost} {
		t.Run(cause.Error(), func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			run(t, ctx, func() { cancel(cause) }, cause.Error())
		})
	}
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		run(t, ctx, func() {}, context.DeadlineExceeded.Error())
	})
}

func TestCrashMidStreamFailsTheCallAndTheNextCallRestarts(t *testing.T) {
	c, _ := start(t, executor.Options{})
	first := c.PID()
	require.NotZero(t, first)
	var evs events
	err := c.Execute(context.Background(), []string{"a", "b", "c"}, exe.ExecuteArgs{Cmd: "crash"}, evs.emit)
	require.Error(t, err)
	assert.ErrorIs(t, err, exe.ErrUnavailable)
	assert.Equal(t, "executor plugin testexec exited (exit status 3)", err.Error())
	// Every host has one event: a its last words if they crossed before
	// the exit, and the others (and a otherwise) a FAILED one, since
	// their commands may have started and nothing can tell whether they
	// ended.
	byHost := map[string]exe.Event{}
	for _, ev := range evs.all() {
		_, dup := byHost[ev.Host]
		assert.False(t, dup, ev.Host)
		byHost[ev.Host] = ev
	}
	require.Len(t, byHost, 3)
	for _, h := range []string{"a", "b", "c"} {
		if ev := byHost[h]; h != "a" || ev.Name != "last words" {
			assert.Equal(t, exe.HostFailed, ev.Status, h)
			assert.Equal(t, "executor plugin testexec exited (exit status 3); the remote command may still be running", ev.Msg, h)
		}
	}

	require.NoError(t, c.Ping(context.Background(), []string{"a"}, func(exe.Event) {}))
	assert.NotEqual(t, first, c.PID(), "a new process")
}

func TestPluginLogsReachTheServerLog(t *testing.T) {
	c, logs := start(t, executor.Options{})
	require.NoError(t, c.Execute(context.Background(), []string{"a"}, exe.ExecuteArgs{Cmd: "say hello"}, func(exe.Event) {}))
	// Both travel asynchronously to the call's result.
	require.Eventually(t, func() bool {
		out := logs.String()
		return strings.Contains(out, "[WARN]  exed.testexec.testexec: hclog: hello: host=a") &&
			strings.Contains(out, "exed.testexec: stderr: hello")
	}, 5*time.Second, 5*time.Millisecond, "plugin log lines, tagged with its name: %s", logs)
}

func TestKilledPluginFailsRunningCall(t *testing.T) {
	c, _ := start(t, executor.Options{})
	pid := c.PID()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Execute(context.Background(), []string{"a"}, exe.ExecuteArgs{Cmd: "block"}, func(exe.Event) { close(started) })
	}()
	<-started
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	err := <-done
	assert.Equal(t, "executor plugin testexec exited (signal: killed)", err.Error())
	require.NoError(t, c.Ping(context.Background(), []string{"a"}, func(exe.Event) {}))
}

// A plugin that dies is started again at once, with no call to prompt
// it: it may have work left to clean up.
func TestDeadPluginIsStartedAgain(t *testing.T) {
	c, _ := start(t, executor.Options{})
	first := c.PID()
	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	require.Eventually(t, func() bool { pid := c.PID(); return pid != 0 && pid != first }, 10*time.Second, 10*time.Millisecond,
		"a new plugin process")
}

// Shutdown cancels the plugin's operations and lets them finish what a
// cancel still has to do before the process exits.
func TestShutdownWaitsForOperations(t *testing.T) {
	marker := t.TempDir()
	c, _ := start(t, executor.Options{Config: map[string]string{"marker_dir": marker}})
	pid := c.PID()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Execute(context.Background(), []string{"a"}, exe.ExecuteArgs{Cmd: "linger 500ms"}, func(exe.Event) { close(started) })
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, c.Shutdown(ctx))
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the plugin has exited")
	b, err := os.ReadFile(filepath.Join(marker, "lingered"))
	require.NoError(t, err, "the operation finished before the plugin exited")
	assert.Equal(t, "500ms", string(b))
	assert.Error(t, <-done)
	assert.ErrorIs(t, c.Ping(context.Background(), []string{"a"}, func(exe.Event) {}), exe.ErrUnavailable, "no call after Shutdown")
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	_, err := executor.Start(ctx, executor.Options{Name: "testexec", Path: bins["testexec"], Env: []string{"EXE_TESTPLUGIN_PROTOCOL=2"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "incompatible API version with plugin. Plugin version: 2, Client versions: [1]")

	_, err = executor.Start(ctx, executor.Options{Name: "testexec", Path: bins["testexec"], Config: map[string]string{"fail": "x"}})
	assert.ErrorIs(t, err, exe.ErrInvalid)
	assert.Equal(t, `executor plugin testexec: [testexec] fail: "x" refused`, err.Error())

	_, err = executor.Start(ctx, executor.Options{Name: "notaplugin", Path: "/bin/true"})
	assert.ErrorContains(t, err, "executor plugin notaplugin could not be started: start /bin/true")
	// The log gets the path and go-plugin's text; clients get neither.
	assert.Equal(t, "executor plugin notaplugin could not be started", exe.PublicMessage(err))
	assert.ErrorIs(t, err, exe.ErrUnavailable)

	_, err = executor.Start(ctx, executor.Options{Name: "missing", Path: filepath.Join(t.TempDir(), "nope")})
	assert.ErrorContains(t, err, "executor plugin missing")

	// A plugin that serves a nil executor says so and exits before the
	// handshake, rather than panic at its first call.
	logged := &syncBuffer{}
	_, err = executor.Start(ctx, executor.Options{Name: "testexec", Path: bins["testexec"], Env: []string{"EXE_TESTPLUGIN_NIL=1"},
		Logger: hclog.New(&hclog.LoggerOptions{Output: logged, Level: hclog.Debug})})
	assert.ErrorIs(t, err, exe.ErrUnavailable)
	assert.Eventually(t, func() bool {
		return strings.Contains(logged.String(), "executor.Serve needs the executor to serve, not nil")
	},
		10*time.Second, 10*time.Millisecond, "the plugin's stderr: %s", logged)
}

func TestCloseLeavesNoProcess(t *testing.T) {
	c, _ := start(t, executor.Options{})
	pid := c.PID()
	require.NotZero(t, pid)
	require.NoError(t, c.Close())
	// go-plugin reaps the process before Kill returns: no such PID.
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	err := c.Ping(context.Background(), []string{"a"}, func(exe.Event) {})
	assert.ErrorIs(t, err, exe.ErrUnavailable)
}

func TestExamplePluginLocalsh(t *testing.T) {
	c, _ := start(t, executor.Options{Name: "localsh", Path: bins["exe-executor-localsh"], Config: map[string]string{"hosts": "web1, web2"}})
	ctx := context.Background()
	hosts, err := c.Match(ctx, "web*")
	require.NoError(t, err)
	assert.Equal(t, []string{"web1", "web2"}, hosts)
	var evs events
	require.NoError(t, c.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: `printf '%s' "$0"; exit 4`}, evs.emit))
	for _, ev := range evs.all() {
		assert.Equal(t, exe.HostFailed, ev.Status)
		assert.Equal(t, exe.ExecResult{RTC: 4, Stdout: "/bin/sh"}, *ev.Exec)
	}
	_, err = executor.Start(ctx, executor.Options{Name: "localsh", Path: bins["exe-executor-localsh"], Config: map[string]string{"hots": "x"}})
	assert.EqualError(t, err, "executor plugin localsh: [localsh] hots: unknown option")
	assert.True(t, errors.Is(err, exe.ErrInvalid))
}

// SIGHUP is the server's (a reload): a plugin it reaches too (`killall
// -HUP`, a signal to the process group, a closing terminal) goes on with
// the work under way.
func TestSIGHUPDoesNotEndThePlugin(t *testing.T) {
	c, logs := start(t, executor.Options{})
	pid := c.PID()
	cancel, done := executeBlocking(c)
	require.NoError(t, syscall.Kill(pid, syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "SIGHUP ignored: the server reloads its plugins") },
		10*time.Second, 5*time.Millisecond, "the plugin says it took the signal: %s", logs)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled, "the call ends by its cancel, not by the plugin's death")
	assert.Equal(t, pid, c.PID())
	assert.Zero(t, c.Restarts())
	require.NoError(t, c.Ping(context.Background(), []string{"a"}, func(exe.Event) {}))
}

// executeBlocking starts testexec's "block" on host a and returns once it
// has started: cancel ends it, and done gives what Execute returned.
func executeBlocking(c *executor.Client) (cancel context.CancelFunc, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	returned := make(chan error, 1)
	go func() {
		returned <- c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "block"}, func(ev exe.Event) {
			if ev.Name == "started" {
				close(started)
			}
		})
	}()
	<-started
	return cancel, returned
}
