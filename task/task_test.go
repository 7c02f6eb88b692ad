package task_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/task"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var bins map[string]string

func TestMain(m *testing.M) {
	plugintest.Main(m, &bins, map[string]string{
		"exe-task-pingwave":       "./examples/plugins/exe-task-pingwave",
		"exe-executor-localsh":    "./examples/plugins/exe-executor-localsh",
		"exe-task-rollingrestart": "./plugins/rollingrestart/cmd/exe-task-rollingrestart",
	})
}

func startTask(t *testing.T) *task.Client {
	t.Helper()
	c, err := task.Start(context.Background(), task.Options{Name: "pingwave", Path: bins["exe-task-pingwave"]})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestInfoCarriesTheSchema(t *testing.T) {
	c := startTask(t)
	info, err := c.Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "pingwave", info.Type)
	assert.NotEmpty(t, info.Description)
	opts, err := info.Options.Validate(map[string]any{})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"wave": 1.0}, opts, "the default crossed the boundary")
	_, err = info.Options.Validate(map[string]any{"wave": "two"})
	assert.ErrorIs(t, err, exe.ErrInvalid)
}

// The task plugin drives an executor plugin through the server: plugin →
// broker → this process → executor plugin, and back.
func TestTaskDrivesAnExecutorPluginThroughTheBroker(t *testing.T) {
	c := startTask(t)
	x, err := executor.Start(context.Background(), executor.Options{Name: "localsh", Path: bins["exe-executor-localsh"],
		Config: map[string]string{"hosts": "w1,w2,w3"}})
	require.NoError(t, err)
	defer x.Close()
	var mu sync.Mutex
	var got []string
	err = c.Run(context.Background(), x, []string{"w1", "w2", "w3"}, exe.TaskArgs{Type: "pingwave", Options: map[string]any{"wave": 2.0}},
		func(ev exe.Event) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%s %s %s", ev.Host, ev.Status, ev.Name))
		})
	require.NoError(t, err)
	assert.Equal(t, []string{
		exe.AnnounceHost + " OK wave 1", "w1 OK ", "w2 OK ",
		exe.AnnounceHost + " OK wave 2", "w3 OK ",
	}, got)
}

// unreachableAfter answers ping for the first n hosts only.
type unreachableAfter struct {
	plugintest.Executor
	ok map[string]bool
}

func (u *unreachableAfter) Ping(_ context.Context, hosts []string, emit exe.Emit) error {
	for _, h := range hosts {
		if u.ok[h] {
			emit(exe.Event{Host: h, Status: exe.HostOK})
		} else {
			emit(exe.Event{Host: h, Status: exe.HostUnreachable, Msg: "connection refused"})
		}
	}
	return nil
}

func TestTaskErrorAndRepeatedRuns(t *testing.T) {
	c := startTask(t)
	x := &unreachableAfter{ok: map[string]bool{"a": true}}
	var evs []exe.Event
	err := c.Run(context.Background(), x, []string{"a", "b", "c"}, exe.TaskArgs{Options: map[string]any{"wave": 1.0}},
		func(ev exe.Event) { evs = append(evs, ev) })
	assert.EqualError(t, err, "wave 2: 1 hosts did not answer; later waves not run")
	require.Len(t, evs, 4, "two announcements and two pings; wave 3 never ran")
	assert.Equal(t, "connection refused", evs[3].Msg)
	// Each run serves its executor on a broker stream of its own.
	for i := 0; i < 3; i++ {
		require.NoError(t, c.Run(context.Background(), x, []string{"a"}, exe.TaskArgs{}, func(exe.Event) {}))
	}
}

func TestCrashedTaskPluginRestarts(t *testing.T) {
	c := startTask(t)
	pid := c.PID()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return c.PID() == 0 }, 5*time.Second, time.Millisecond, "go-plugin saw the exit")
	// The next call starts a new process and succeeds.
	_, err := c.Info(context.Background())
	require.NoError(t, err)
	assert.NotZero(t, c.PID())
	assert.NotEqual(t, pid, c.PID())
}

// restartsAll is the test executor with services that always restart.
type restartsAll struct{ plugintest.Executor }

func (*restartsAll) Service(_ context.Context, hosts []string, _ exe.ServiceArgs, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostChanged})
	}
	return nil
}

// stuckPing answers ping only when its context ends, with the reason: an
// executor whose hosts a cancel interrupts.
type stuckPing struct{ plugintest.Executor }

func (*stuckPing) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	<-ctx.Done()
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostFailed, Msg: context.Cause(ctx).Error()})
	}
	return nil
}

// The rolling-restart plugin health-checks hosts through the server's
// executor; what the check prints is not UTF-8. Every host keeps its
// health check's output, as text.
func TestRollingRestartHealthCheckOutputNotUTF8(t *testing.T) {
	c, err := task.Start(context.Background(), task.Options{Name: "rollingrestart", Path: bins["exe-task-rollingrestart"]})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	info, err := c.Info(ctx)
	require.NoError(t, err)
	raw := []byte("caf\xe9 \xff\n")
	opts, err := info.Options.Validate(map[string]any{"service": "app", "batch": 2.0, "health_cmd": "print " + hex.EncodeToString(raw)})
	require.NoError(t, err)
	var mu sync.Mutex
	byHost := map[string][]exe.Event{}
	err = c.Run(ctx, &restartsAll{}, []string{"a", "b"}, exe.TaskArgs{Type: "rollingrestart", Options: opts}, func(ev exe.Event) {
		mu.Lock()
		defer mu.Unlock()
		byHost[ev.Host] = append(byHost[ev.Host], ev)
	})
	require.NoError(t, err)
	for _, h := range []string{"a", "b"} {
		evs := byHost[h]
		require.Len(t, evs, 2, h)
		assert.Equal(t, "restart", evs[0].Name)
		assert.Equal(t, "health check", evs[1].Name)
		assert.Equal(t, exe.HostOK, evs[1].Status)
		assert.Empty(t, plugintest.NotUTF8(evs[1]))
		assert.Equal(t, string([]rune(string(raw))), evs[1].Exec.Stdout, "each bad byte one U+FFFD")
	}
}

// A cancel crosses the whole chain (this process → task plugin → broker →
// this process's executor) and the events of the interrupted hosts come
// back along it, with the cancel's cause.
func TestCancelReachesTheTaskAndItsExecutorCalls(t *testing.T) {
	c := startTask(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var mu sync.Mutex
	var got []exe.Event
	err := c.Run(ctx, &stuckPing{}, []string{"a", "b"}, exe.TaskArgs{Options: map[string]any{"wave": 2.0}}, func(ev exe.Event) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		if ev.Host == exe.AnnounceHost {
			cancel(exe.ErrShutdown) // the wave's ping has started
		}
	})
	assert.ErrorIs(t, err, context.Canceled)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 3, "the announcement, then both interrupted hosts: %v", got)
	for _, ev := range got[1:] {
		assert.Equal(t, exe.HostFailed, ev.Status)
		assert.Equal(t, "server shutdown", ev.Msg)
	}
}
