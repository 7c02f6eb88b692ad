package executor_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Operations one after another take the same stream: one is opened, and
// kept for the next operation.
func TestOperationsReuseStreams(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	for i := range 50 {
		var evs events
		require.NoError(t, c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: fmt.Sprint("op ", i)}, evs.emit))
		require.Equal(t, []exe.Event{{Host: "a", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: fmt.Sprint("op ", i)}}}, evs.all())
	}
	// An operation that fails in the plugin still ends its stream cleanly.
	require.EqualError(t, c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "fail"}, func(exe.Event) {}), "testexec: failed on request")
	require.NoError(t, c.Ping(ctx, []string{"a"}, func(exe.Event) {}))
	opened, idle := executor.OperateStreams(c)
	assert.Equal(t, int64(1), opened, "streams opened for 52 operations")
	assert.Equal(t, 1, idle)
}

// Operations at once each get a stream of their own, and exactly their
// own events, in order; the streams are kept for the operations after.
func TestConcurrentOperationsGetTheirOwnEvents(t *testing.T) {
	c, _ := start(t, executor.Options{})
	const workers, rounds = 16, 20
	// Operations crossed or lost end by this deadline rather than hang.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				var evs events
				// A different count of events per worker and round, and a
				// command whose output names them.
				n := 1 + (w*rounds+r)%7
				if err := c.Execute(ctx, []string{"a", "b"}, exe.ExecuteArgs{Cmd: fmt.Sprint("stream ", n)}, evs.emit); err != nil {
					errs <- err
					return
				}
				next := map[string]float64{"a": 1, "b": 1}
				list := evs.all()
				if len(list) != 2*n {
					errs <- fmt.Errorf("worker %d round %d: %d events, want %d", w, r, len(list), 2*n)
					return
				}
				for _, ev := range list {
					if ev.Extra["n"] != next[ev.Host] {
						errs <- fmt.Errorf("worker %d round %d: host %s event %v, want %v", w, r, ev.Host, ev.Extra["n"], next[ev.Host])
						return
					}
					next[ev.Host]++
				}
				cmd := fmt.Sprintf("worker %d round %d", w, r)
				evs = events{}
				if err := c.Execute(ctx, []string{"c"}, exe.ExecuteArgs{Cmd: cmd}, evs.emit); err != nil {
					errs <- err
					return
				}
				if got := evs.all(); len(got) != 1 || got[0].Exec == nil || got[0].Exec.Stdout != cmd {
					errs <- fmt.Errorf("%s: events %+v", cmd, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	opened, idle := executor.OperateStreams(c)
	assert.LessOrEqual(t, opened, int64(workers), "at most one stream per operation at once")
	assert.Equal(t, int(opened), idle, "every stream is kept")
}

// An operation whose events are not read (its caller is slow) holds back
// no other: each has its stream, and its own flow control.
func TestSlowReaderHoldsBackNoOtherOperation(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	// A stream kept idle: the slow operation takes it, the other opens
	// its own.
	require.NoError(t, c.Ping(ctx, []string{"a"}, func(exe.Event) {}))
	release := make(chan struct{})
	reading := make(chan struct{})
	slow := make(chan error, 1)
	n := 0
	go func() {
		// Far more than the stream's flow-control window, so that the
		// plugin is blocked sending while the reader waits.
		slow <- c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "stream 20000"}, func(exe.Event) {
			if n == 0 {
				close(reading)
				<-release
			}
			n++
		})
	}()
	<-reading
	// A stall would end this by its deadline, not hang the test.
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range 20 {
		var evs events
		require.NoError(t, c.Execute(octx, []string{"b"}, exe.ExecuteArgs{Cmd: fmt.Sprint("meanwhile ", i)}, evs.emit))
		require.Len(t, evs.all(), 1)
	}
	close(release)
	require.NoError(t, <-slow)
	assert.Equal(t, 20000, n)
}

// outcome is what an operation gave its caller.
type outcome struct {
	events []exe.Event
	err    string
	kinds  []bool // errors.Is for each of outcomeKinds
}

var outcomeKinds = []error{exe.ErrInvalid, exe.ErrNotSupported, exe.ErrUnavailable, exe.ErrCancelled, context.Canceled, context.DeadlineExceeded}

func outcomeOf(evs *events, err error) outcome {
	o := outcome{events: evs.all()}
	if err != nil {
		o.err = err.Error()
	}
	for _, k := range outcomeKinds {
		o.kinds = append(o.kinds, errors.Is(err, k))
	}
	return o
}

// An operation on a stream ends as it does with Operate (a plugin built
// before OperateStream): the same events, the same error text and kinds,
// cancelled with the same cause or deadline.
func TestStreamOutcomesAreOperates(t *testing.T) {
	current, _ := start(t, executor.Options{})
	old, _ := start(t, executor.Options{Env: []string{"EXE_TESTPLUGIN_OLD=1"}})
	ops := map[string]func(ctx context.Context, c *executor.Client, emit exe.Emit) error{
		"fail": func(ctx context.Context, c *executor.Client, emit exe.Emit) error {
			return c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "fail"}, emit)
		},
		"invalid": func(ctx context.Context, c *executor.Client, emit exe.Emit) error {
			return c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "error " + hex.EncodeToString([]byte("bad \xff input"))}, emit)
		},
		"not supported": func(ctx context.Context, c *executor.Client, emit exe.Emit) error {
			return c.Service(ctx, []string{"a"}, exe.ServiceArgs{Name: "x", State: exe.ServiceStarted}, emit)
		},
		"bad arguments": func(ctx context.Context, c *executor.Client, emit exe.Emit) error {
			return c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "stream x"}, emit)
		},
		"events": func(ctx context.Context, c *executor.Client, emit exe.Emit) error {
			return c.Execute(ctx, []string{"a", "b"}, exe.ExecuteArgs{Cmd: "stream 3"}, emit)
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			var a, b events
			want := outcomeOf(&a, op(context.Background(), old, a.emit))
			got := outcomeOf(&b, op(context.Background(), current, b.emit))
			assert.Equal(t, want, got)
		})
	}
	// Interrupted: the cause, or the deadline, reaches the plugin and the
	// event the interruption produced reaches the caller.
	interrupt := func(c *executor.Client, mk func() (context.Context, func())) outcome {
		ctx, cancel := mk()
		defer cancel()
		var evs events
		err := c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "block"}, func(ev exe.Event) {
			evs.emit(ev)
			if ev.Name == "started" {
				cancel()
			}
		})
		return outcomeOf(&evs, err)
	}
	for _, cause := range []error{exe.ErrCancelled, exe.ErrShutdown, exe.ErrWorkerLost} {
		t.Run(cause.Error(), func(t *testing.T) {
			mk := func() (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(context.Background())
				return ctx, func() { cancel(cause) }
			}
			want := interrupt(old, mk)
			require.Len(t, want.events, 2)
			assert.Equal(t, want, interrupt(current, mk))
		})
	}
	t.Run("deadline", func(t *testing.T) {
		var a, b events
		run := func(c *executor.Client, evs *events) outcome {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			return outcomeOf(evs, c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "block"}, evs.emit))
		}
		want := run(old, &a)
		require.Len(t, want.events, 2)
		assert.Equal(t, want, run(current, &b))
	})
}

// A stream whose operation was interrupted is not kept: what it may still
// carry belongs to no operation. The next operation opens another.
func TestInterruptedStreamIsNotKept(t *testing.T) {
	c, _ := start(t, executor.Options{})
	require.NoError(t, c.Ping(context.Background(), []string{"a"}, func(exe.Event) {}))
	cancel, done := executeBlocking(c)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	opened, idle := executor.OperateStreams(c)
	assert.Equal(t, int64(1), opened)
	assert.Equal(t, 0, idle, "the interrupted operation's stream was closed")
	require.NoError(t, c.Ping(context.Background(), []string{"a"}, func(exe.Event) {}))
	opened, idle = executor.OperateStreams(c)
	assert.Equal(t, int64(2), opened)
	assert.Equal(t, 1, idle)
}

// A plugin killed during an operation on a stream fails it as it did an
// Operate; the restarted plugin gets new streams, none of the dead
// process's kept ones.
func TestKilledPluginFailsStreamOperationAndTheNextWorks(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	// Streams kept idle by the first process, then one running.
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			<-gate
			_ = c.Ping(ctx, []string{"a"}, func(exe.Event) {})
		})
	}
	close(gate)
	wg.Wait()
	opened, _ := executor.OperateStreams(c)
	require.GreaterOrEqual(t, opened, int64(1))
	pid := c.PID()
	started := make(chan struct{})
	done := make(chan error, 1)
	var evs events
	go func() {
		done <- c.Execute(ctx, []string{"a", "b"}, exe.ExecuteArgs{Cmd: "block"}, func(ev exe.Event) {
			evs.emit(ev)
			if ev.Name == "started" {
				close(started)
			}
		})
	}()
	<-started
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	err := <-done
	assert.Equal(t, "executor plugin testexec exited (signal: killed)", err.Error())
	assert.ErrorIs(t, err, exe.ErrUnavailable)
	assert.Equal(t, []exe.Event{
		{Host: "a", Status: exe.HostChanged, Name: "started"},
		{Host: "b", Status: exe.HostFailed, Msg: "executor plugin testexec exited (signal: killed); the remote command may still be running"},
	}, evs.all())
	for i := range 5 {
		require.NoError(t, c.Ping(ctx, []string{"a"}, func(exe.Event) {}), "operation %d after the restart", i)
	}
	assert.NotEqual(t, pid, c.PID())
	opened, idle := executor.OperateStreams(c)
	assert.Equal(t, int64(1), opened, "the new process's streams")
	assert.Equal(t, 1, idle)
}

// A plugin built before OperateStream answers it Unimplemented once; its
// operations then go by Operate, with no stream tried again.
func TestOldPluginOperatesWithoutStreams(t *testing.T) {
	c, _ := start(t, executor.Options{Env: []string{"EXE_TESTPLUGIN_OLD=1"}})
	ctx := context.Background()
	for i := range 10 {
		var evs events
		require.NoError(t, c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: fmt.Sprint("op ", i)}, evs.emit))
		require.Equal(t, []exe.Event{{Host: "a", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: fmt.Sprint("op ", i)}}}, evs.all())
	}
	cancel, done := executeBlocking(c)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	opened, idle := executor.OperateStreams(c)
	assert.Equal(t, int64(1), opened, "the one stream the plugin refused")
	assert.Zero(t, idle)
}
