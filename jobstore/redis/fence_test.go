package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/latch"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/redistest"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/0ops/exed/plugins/rollingrestart"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heldExecutor stands in for the hosts of mutex jobs. A deploy (named
// "deploy <role>") or a service restart ("restart <service> on <hosts>")
// holds its hosts, as a command running there does, until its context
// ends; then the command stops, the hosts are free again, and each is
// reported FAILED "stopped" with the context's cause. It notes every
// command that started on a host while another still ran there: the
// fault the host locks exist to prevent.
type heldExecutor struct {
	plugintest.Executor

	mu       sync.Mutex
	on       map[string]string // host: the command running there
	ran      map[string]int    // host: commands started there
	overlaps []string          // "<command> started on <host> while <other> ran there"
	causes   map[string]error  // command: the cause it was stopped with
	started  latch.Set         // command: open once it runs
	stopped  latch.Set         // command: open once it stopped, its hosts free
}

func newHeldExecutor() *heldExecutor {
	return &heldExecutor{on: map[string]string{}, ran: map[string]int{}, causes: map[string]error{}}
}

func (x *heldExecutor) startedOf(cmd string) <-chan struct{} { return x.started.Chan(cmd) }

func (x *heldExecutor) stoppedOf(cmd string) <-chan struct{} { return x.stopped.Chan(cmd) }

func (x *heldExecutor) causeOf(cmd string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.causes[cmd]
}

func (x *heldExecutor) ranOn(host string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.ran[host]
}

func (x *heldExecutor) overlapsSoFar() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.overlaps...)
}

// hold runs cmd on hs until ctx ends. Each cmd runs once (a test names
// them so).
func (x *heldExecutor) hold(ctx context.Context, hs []string, cmd string, emit exe.Emit) error {
	x.mu.Lock()
	for _, h := range hs {
		if other, busy := x.on[h]; busy {
			x.overlaps = append(x.overlaps, fmt.Sprintf("%s started on %s while %s ran there", cmd, h, other))
		}
		x.on[h] = cmd
		x.ran[h]++
	}
	x.started.Open(cmd)
	x.mu.Unlock()
	for _, h := range hs {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Name: "started"})
	}
	<-ctx.Done()
	cause := context.Cause(ctx)
	x.mu.Lock()
	for _, h := range hs {
		if x.on[h] == cmd {
			delete(x.on, h)
		}
	}
	x.causes[cmd] = cause
	x.stopped.Open(cmd)
	x.mu.Unlock()
	for _, h := range hs {
		emit(exe.Event{Host: h, Status: exe.HostFailed, Name: "stopped", Msg: cause.Error()})
	}
	return ctx.Err()
}

func (x *heldExecutor) Deploy(ctx context.Context, hs []string, args exe.DeployArgs, emit exe.Emit) error {
	return x.hold(ctx, hs, "deploy "+args.Role, emit)
}

func (x *heldExecutor) Service(ctx context.Context, hs []string, args exe.ServiceArgs, emit exe.Emit) error {
	return x.hold(ctx, hs, fmt.Sprintf("restart %s on %s", args.Name, strings.Join(hs, ",")), emit)
}

// within waits until ch is closed, for up to 30s.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not within 30s", what)
	}
}

// fenceEngine is an Engine on s, with x, the rolling restart task and a
// Redis dispatcher with opts, shut down when the test ends.
func fenceEngine(t *testing.T, s *exeredis.Store, x exe.Executor, opts exeredis.DispatcherOptions) *exe.Engine {
	eng, err := exe.NewEngine(exe.Config{Store: s, Executor: x, Dispatcher: exeredis.NewDispatcher(s, opts),
		Tasks: map[string]exe.Task{"rollingrestart": rollingrestart.Task{}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return eng
}

func deployOf(role string, hosts ...string) exe.Request {
	return exe.Request{Operate: exe.OpDeploy, Targets: hosts, Deploy: exe.DeployArgs{Role: role}}
}

// TestCutOffWorkerStopsItsDeployBeforeItsHostsAreFreed: a worker runs a
// deploy and is cut off from Redis alone (a partition: the API process
// and another worker still reach it). Before its lease may lapse, the
// worker stops the deploy's commands itself, with cause exe.ErrLeaseLost;
// only then does the lost-lease recovery fail the job and free its hosts,
// and a second deploy on one of them starts, on the other worker. Never
// do two deploys run on one host at once. (Before, the cut-off worker's
// command ran on while the recovery failed its job as lost and the second
// deploy started beside it.)
func TestCutOffWorkerStopsItsDeployBeforeItsHostsAreFreed(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	lease := 3 * time.Second
	prefix := "f" + uuid.NewString()[:8] + ":"
	x := newHeldExecutor()
	// The API process runs the lost-lease recovery, as its dispatcher
	// does when it runs no jobs.
	api := fenceEngine(t, exeredis.New(serverClient(t, srv.Addr), exeredis.Options{Prefix: prefix}), &plugintest.Executor{},
		exeredis.DispatcherOptions{Lease: lease})
	fenceEngine(t, exeredis.New(clientWithin(t, proxy.Addr, 200*time.Millisecond), exeredis.Options{Prefix: prefix}), x,
		exeredis.DispatcherOptions{RunJobs: true, Lease: lease, Grace: time.Second})
	ctx := context.Background()
	first, err := api.Submit(ctx, deployOf("first", "a", "b"))
	require.NoError(t, err)
	within(t, x.startedOf("deploy first"), "the first deploy starts")
	// The other worker starts only now: the first deploy is the one on
	// the worker that is cut off.
	fenceEngine(t, exeredis.New(serverClient(t, srv.Addr), exeredis.Options{Prefix: prefix}), x,
		exeredis.DispatcherOptions{RunJobs: true, Lease: lease, Grace: time.Second})
	proxy.Blackhole()
	// Cleanups run last first: the cut-off worker reaches Redis again
	// before it shuts down.
	t.Cleanup(proxy.Restore)

	// Host a is locked by the first deploy until the recovery frees it;
	// asked every 20ms, for up to 30s.
	var second string
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for giveUp := time.After(30 * time.Second); second == ""; {
		jid, err := api.Submit(ctx, deployOf("second", "a"))
		if err == nil {
			second = jid
			break
		}
		require.ErrorIs(t, err, exe.ErrConflict)
		select {
		case <-poll.C:
		case <-giveUp:
			t.Fatal("the first deploy's hosts were not freed within 30s")
		}
	}
	select {
	case <-x.stoppedOf("deploy first"):
	default:
		t.Fatal("host a was freed while the first deploy's command still ran there")
	}
	assert.ErrorIs(t, x.causeOf("deploy first"), exe.ErrLeaseLost, "stopped by its own worker")

	within(t, x.startedOf("deploy second"), "the second deploy starts on the other worker")
	assert.Empty(t, x.overlapsSoFar(), "two deploys on one host at once")
	assert.Equal(t, 2, x.ranOn("a"))

	// The worker is still cut off: the recovery failed the first deploy
	// as lost, and its commands were indeed stopped.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	job, err := api.Follow(fctx, first, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, exe.ErrWorkerLost.Error(), job.Error)
	_, err = api.Cancel(ctx, second)
	require.NoError(t, err)
}

// TestCutOffServerStopsItsRollingRestartAndStoresWhy: an API process that
// runs its jobs itself (RunJobs, alone on Redis) runs a rolling restart,
// a batch of one host at a time, and is cut off from Redis while the
// first host restarts. Before the lease may lapse, the process stops that
// restart itself, and the task starts no further batch. Redis is back in
// time (the process's own recovery lost touch with it too, so nothing
// failed the job as lost): the job's end and its hosts' events are stored
// and say what happened, with the cause "its worker lost its lease: cut
// off from Redis": the first host's restart FAILED, the second host
// SKIPPED, never restarted. Its hosts are free again. (Before, the
// restart ran on while its renewals failed, and the job stayed Running.)
func TestCutOffServerStopsItsRollingRestartAndStoresWhy(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	prefix := "f" + uuid.NewString()[:8] + ":"
	x := newHeldExecutor()
	eng := fenceEngine(t, exeredis.New(clientWithin(t, proxy.Addr, 200*time.Millisecond), exeredis.Options{Prefix: prefix}), x,
		exeredis.DispatcherOptions{RunJobs: true, Lease: 3 * time.Second, LostMessage: exe.ErrServerLost.Error(), Grace: time.Second})
	t.Cleanup(proxy.Restore)
	direct := exeredis.New(serverClient(t, srv.Addr), exeredis.Options{Prefix: prefix})
	ctx := context.Background()
	rr := exe.Request{Operate: exe.OpTask, Targets: []string{"a", "b"},
		Task: exe.TaskArgs{Name: "rr", Type: "rollingrestart", Options: map[string]any{"service": "svc"}}}
	jid, err := eng.Submit(ctx, rr)
	require.NoError(t, err)
	within(t, x.startedOf("restart svc on a"), "the first batch restarts")
	require.Eventually(t, func() bool {
		j, err := direct.Get(ctx, jid, true)
		return err == nil && len(j.ReturnData["a"]) > 0
	}, 20*time.Second, 10*time.Millisecond, "the restart's first event is stored")

	proxy.Blackhole()
	within(t, x.stoppedOf("restart svc on a"), "the process stops the restart before its lease may lapse")
	assert.ErrorIs(t, x.causeOf("restart svc on a"), exe.ErrLeaseLost)
	proxy.Restore()

	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	job, err := eng.Follow(fctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, exe.ErrLeaseLost.Error(), job.Error, "the job says why it stopped, not that its process was lost")
	full, err := direct.Get(ctx, jid, true)
	require.NoError(t, err)
	if evs := full.ReturnData["a"]; assert.Len(t, evs, 2, "a: started, stopped") {
		assert.Equal(t, exe.HostFailed, evs[1].Status)
		assert.Equal(t, "its worker lost its lease: cut off from Redis", evs[1].Msg, "a: the restart was stopped, and why")
	}
	if evs := full.ReturnData["b"]; assert.Len(t, evs, 1) {
		want := exe.NotStarted("b", exe.ErrLeaseLost)
		assert.Equal(t, []any{want.Status, want.Msg}, []any{evs[0].Status, evs[0].Msg}, "b: the next batch never started")
	}
	assert.Zero(t, x.ranOn("b"), "no batch after the stop")
	assert.Empty(t, x.overlapsSoFar())

	_, err = eng.Submit(ctx, deployOf("next", "a", "b"))
	require.NoError(t, err, "the job's hosts are free")
}

// TestFenceMarginIsChecked: a FenceMargin that is negative, or more than
// half the Lease (the default one or the one given), is refused with the
// rule it breaks; half the Lease is accepted.
func TestFenceMarginIsChecked(t *testing.T) {
	srv := redistest.Start(t)
	s, _, _ := newStore(t, srv)
	for _, c := range []struct {
		opts exeredis.DispatcherOptions
		want string
	}{
		{exeredis.DispatcherOptions{FenceMargin: -time.Second},
			"redis dispatcher: DispatcherOptions.FenceMargin is negative (zero means the default)"},
		{exeredis.DispatcherOptions{FenceMargin: 16 * time.Second},
			"redis dispatcher: DispatcherOptions.FenceMargin (16s) is more than half the Lease (30s): a worker would stop its jobs whenever a renewal (every Lease/3) is a little late"},
		{exeredis.DispatcherOptions{RunJobs: true, Lease: time.Second, FenceMargin: 501 * time.Millisecond},
			"redis dispatcher: DispatcherOptions.FenceMargin (501ms) is more than half the Lease (1s): a worker would stop its jobs whenever a renewal (every Lease/3) is a little late"},
	} {
		_, err := exe.NewEngine(exe.Config{Store: s, Executor: &plugintest.Executor{}, Dispatcher: exeredis.NewDispatcher(s, c.opts)})
		assert.EqualError(t, err, c.want)
	}
	eng, err := exe.NewEngine(exe.Config{Store: s, Executor: &plugintest.Executor{},
		Dispatcher: exeredis.NewDispatcher(s, exeredis.DispatcherOptions{RunJobs: true, Lease: time.Second, FenceMargin: 500 * time.Millisecond})})
	require.NoError(t, err)
	require.NoError(t, eng.Shutdown(context.Background()))
}
