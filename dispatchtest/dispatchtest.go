// Package dispatchtest is the conformance suite every exe.Dispatcher
// passes, as River's riverdrivertest is for its drivers. It drives the
// dispatcher through an exe.Engine, with an executor of its own that
// reports what it was asked to do; Run's example is a dispatcher's test.
//
// It checks that a dispatched job runs once, to its end; that jobs run
// side by side up to the workers asked for; that a cancel reaches a
// running job, and that a cancelled queued job never runs; that shutdown
// lets running jobs finish within the grace period and cancels those
// that do not, never starts a queued job, refuses new ones, and can be
// called again; that a dispatcher serves one Engine; and that a
// dispatcher bound to a store (exe.BoundDispatcher) says which, so that
// an Engine on another store is refused.
package dispatchtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/latch"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Options are what a test asks of the dispatcher it is given.
type Options struct {
	// Workers is how many jobs the dispatcher must run at once.
	Workers int
	// Grace is what its Shutdown gives running jobs.
	Grace time.Duration
}

// New returns an empty job store and a dispatcher that runs its jobs in
// this process, for one test; it registers its own cleanup with
// t.Cleanup. The dispatcher is not started: the suite gives it to an
// Engine.
type New func(t *testing.T, opts Options) (exe.JobStore, exe.Dispatcher)

// Run runs the whole suite against dispatchers made by newDispatcher.
func Run(t *testing.T, newDispatcher New) {
	tests := []struct {
		name string
		fn   func(*testing.T, New)
	}{
		{"RunsEachJobOnce", testRunsOnce},
		{"RunsWorkersAtOnce", testConcurrency},
		{"CancelReachesRunningJob", testCancelRunning},
		{"CancelledQueuedJobNeverRuns", testCancelQueued},
		{"CancelOfNoRunningJob", testCancelNotRunning},
		{"ShutdownGivesGraceThenCancels", testShutdownGrace},
		{"ShutdownStartsNoQueuedJob", testShutdownQueued},
		{"BusyAfterShutdown", testBusyAfterShutdown},
		{"ServesOneEngine", testOneEngine},
		{"StoreIsTheDispatchersOwn", testOwnStore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDispatcher) })
	}
}

// wait bounds every wait of the suite.
const wait = 30 * time.Second

// suite is one test's engine, store, dispatcher and executor.
type suite struct {
	t      *testing.T
	engine *exe.Engine
	store  exe.JobStore
	disp   exe.Dispatcher
	x      *executor
}

func start(t *testing.T, newDispatcher New, opts Options) *suite {
	t.Helper()
	store, disp := newDispatcher(t, opts)
	x := newExecutor(t)
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, Dispatcher: disp})
	require.NoError(t, err)
	t.Cleanup(func() {
		x.release()
		_ = eng.Shutdown(context.Background())
	})
	return &suite{t: t, engine: eng, store: store, disp: disp, x: x}
}

// submit stores and dispatches an execute job of cmd on hosts.
func (s *suite) submit(cmd string, hosts ...string) string {
	s.t.Helper()
	jid, err := s.engine.Submit(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: hosts,
		Execute: exe.ExecuteArgs{Cmd: cmd}})
	require.NoError(s.t, err)
	return jid
}

// end waits until the job has ended and returns it with its events.
func (s *suite) end(jid string) *exe.Job {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := s.engine.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(s.t, err, "job %s ends", jid)
	job, err := s.store.Get(context.Background(), jid, true)
	require.NoError(s.t, err)
	return job
}

// A dispatched job runs once, to its end: every host's event, in the
// order the executor emitted them, then the outcome.
func testRunsOnce(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 2, Grace: time.Second})
	jids := map[string]int{}
	for i := 0; i < 10; i++ {
		jids[s.submit(fmt.Sprintf("echo %d", i), "a", "b", "c")] = i
	}
	for jid, i := range jids {
		job := s.end(jid)
		assert.Equal(t, exe.JobDone, job.State, job.Error)
		for _, h := range []string{"a", "b", "c"} {
			if assert.Len(t, job.ReturnData[h], 1, "%s %s", jid, h) {
				assert.Equal(t, fmt.Sprint(i), job.ReturnData[h][0].Exec.Stdout)
			}
		}
		assert.Equal(t, 1, s.x.runs(fmt.Sprintf("echo %d", i)), "job %d ran once", i)
	}
}

// Jobs run side by side, as many as the workers asked for.
func testConcurrency(t *testing.T, newDispatcher New) {
	const workers = 3
	s := start(t, newDispatcher, Options{Workers: workers, Grace: time.Second})
	var jids []string
	for i := 0; i < workers; i++ {
		jids = append(jids, s.submit(fmt.Sprintf("gate g%d", i), "a"))
	}
	for i := 0; i < workers; i++ {
		s.x.waitStarted(fmt.Sprintf("gate g%d", i))
	}
	for i := 0; i < workers; i++ {
		s.x.open(fmt.Sprintf("g%d", i))
	}
	for _, jid := range jids {
		assert.Equal(t, exe.JobDone, s.end(jid).State)
	}
}

// A cancel reaches the executor of a running job, with cause
// exe.ErrCancelled; the job ends "cancelled" with what its executor
// reported, and the worker is free again.
func testCancelRunning(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 1, Grace: time.Second})
	jid := s.submit("block", "a")
	s.x.waitStarted("block")
	job, err := s.engine.Cancel(context.Background(), jid)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	job = s.end(jid)
	if assert.Len(t, job.ReturnData["a"], 2) {
		assert.Equal(t, exe.Event{Host: "a", Seq: 2, Status: exe.HostFailed, Msg: "stopped: cancelled"}, job.ReturnData["a"][1],
			"the executor saw the cancel's cause")
	}
	assert.Equal(t, exe.JobDone, s.end(s.submit("echo next", "a")).State, "the worker is free again")
}

// A job cancelled while it waits for a worker never runs: its hosts end
// SKIPPED "cancelled before start".
func testCancelQueued(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 1, Grace: time.Second})
	busy := s.submit("gate busy", "a")
	s.x.waitStarted("gate busy")
	queued := s.submit("echo queued", "a", "b")
	job, err := s.engine.Cancel(context.Background(), queued)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	s.x.open("busy")
	assert.Equal(t, exe.JobDone, s.end(busy).State)
	// A job dispatched after it runs once the worker has passed it over.
	assert.Equal(t, exe.JobDone, s.end(s.submit("echo later", "a")).State)
	job = s.end(queued)
	for _, h := range []string{"a", "b"} {
		assert.Equal(t, []exe.Event{exe.NotStarted(h, exe.ErrCancelled)}, clearSeq(job.ReturnData[h]), h)
	}
	assert.Zero(t, s.x.runs("echo queued"), "the cancelled job never ran")
}

// Cancel of a job no worker runs (unknown, or ended) is
// exe.ErrNotRunning, for the Engine to end it.
func testCancelNotRunning(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 1, Grace: time.Second})
	err := s.disp.Cancel(context.Background(), "no-such-job")
	assert.ErrorIs(t, err, exe.ErrNotRunning)
	jid := s.submit("echo done", "a")
	s.end(jid)
	// Its worker lets go of it once the run has returned, a moment after
	// the job has ended in the store.
	assert.Eventually(t, func() bool { return errors.Is(s.disp.Cancel(context.Background(), jid), exe.ErrNotRunning) },
		wait, time.Millisecond, "a job that ended")
}

// Shutdown lets a running job that ends within the grace period finish,
// then cancels the one that does not, with cause exe.ErrShutdown: it
// ends Failure "server shutdown" with what its executor reported. A
// second Shutdown is harmless.
func testShutdownGrace(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 2, Grace: 2 * time.Second})
	finishing := s.submit("gate late", "a")
	stuck := s.submit("block", "b")
	s.x.waitStarted("gate late")
	s.x.waitStarted("block")
	stopped := make(chan error, 1)
	go func() { stopped <- s.engine.Shutdown(context.Background()) }()
	s.waitShuttingDown()
	s.x.open("late") // within the grace period
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("Shutdown did not return")
	}
	job, err := s.store.Get(context.Background(), finishing, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, job.State, "the job that ended within the grace period: %s", job.Error)
	job, err = s.store.Get(context.Background(), stuck, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "server shutdown", job.Error)
	if assert.Len(t, job.ReturnData["b"], 2) {
		assert.Equal(t, "stopped: server shutdown", job.ReturnData["b"][1].Msg, "the executor saw the shutdown's cause")
	}
	require.NoError(t, s.engine.Shutdown(context.Background()), "a second Shutdown")
}

// waitShuttingDown waits until the Engine refuses new jobs: Shutdown has
// begun.
func (s *suite) waitShuttingDown() {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		_, err := s.engine.RunSync(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: []string{"a"},
			Execute: exe.ExecuteArgs{Cmd: "echo probe"}})
		return errors.Is(err, exe.ErrBusy)
	}, wait, time.Millisecond, "Shutdown begins")
}

// Shutdown never starts a job that waits for a worker: it ends as never
// started (each host SKIPPED "server shutdown"), or stays queued, as it
// was, for another process's workers.
func testShutdownQueued(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 1, Grace: 100 * time.Millisecond})
	running := s.submit("block", "a")
	s.x.waitStarted("block")
	queued := s.submit("echo queued", "a", "b")
	require.NoError(t, s.engine.Shutdown(context.Background()))
	job, err := s.store.Get(context.Background(), running, false)
	require.NoError(t, err)
	assert.Equal(t, "server shutdown", job.Error)
	job, err = s.store.Get(context.Background(), queued, true)
	require.NoError(t, err)
	switch job.State {
	case exe.JobRunning:
		assert.Empty(t, job.ReturnData, "still queued: nothing ran")
	case exe.JobFailure:
		assert.Equal(t, "server shutdown", job.Error)
		for _, h := range []string{"a", "b"} {
			assert.Equal(t, []exe.Event{exe.NotStarted(h, exe.ErrShutdown)}, clearSeq(job.ReturnData[h]), h)
		}
	default:
		t.Errorf("the queued job ended %s", job.State)
	}
	assert.Zero(t, s.x.runs("echo queued"), "the queued job never ran")
}

// After Shutdown the Engine takes no job, and stores none.
func testBusyAfterShutdown(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 1, Grace: time.Second})
	require.NoError(t, s.engine.Shutdown(context.Background()))
	_, err := s.engine.Submit(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: []string{"a"},
		Execute: exe.ExecuteArgs{Cmd: "echo late"}})
	assert.ErrorIs(t, err, exe.ErrBusy)
	ids, err := s.store.List(context.Background())
	require.NoError(t, err)
	assert.Empty(t, ids, "a refused job is not stored")
	assert.Zero(t, s.x.runs("echo late"))
}

// A dispatcher is started once, by the one Engine it serves.
func testOneEngine(t *testing.T, newDispatcher New) {
	s := start(t, newDispatcher, Options{Workers: 1, Grace: time.Second})
	_, err := exe.NewEngine(exe.Config{Store: s.store, Executor: s.x, Dispatcher: s.disp})
	assert.Error(t, err, "a second Engine on a started dispatcher")
	assert.Equal(t, exe.JobDone, s.end(s.submit("echo still", "a")).State, "the first Engine still runs jobs")
}

// A dispatcher bound to a store (exe.BoundDispatcher) names the store New
// returned with it: an Engine on another store is refused before it
// could store a job where the dispatcher never looks, and an Engine
// given no store takes the dispatcher's. A dispatcher that is not bound
// runs the jobs of the Engine's store, whatever it is.
func testOwnStore(t *testing.T, newDispatcher New) {
	store, disp := newDispatcher(t, Options{Workers: 1, Grace: time.Second})
	b, ok := disp.(exe.BoundDispatcher)
	if !ok {
		t.Skipf("%T is not bound to a store", disp)
	}
	require.NotNil(t, b.JobStore(), "the store it is bound to")
	x := newExecutor(t)
	defer x.release()
	_, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x, Dispatcher: disp})
	require.ErrorContains(t, err, "is not the store of Config.Dispatcher", "an Engine on another store")
	eng, err := exe.NewEngine(exe.Config{Executor: x, Dispatcher: disp})
	require.NoError(t, err, "an Engine on the dispatcher's own store")
	defer eng.Shutdown(context.Background())
	jid, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: []string{"a"},
		Execute: exe.ExecuteArgs{Cmd: "echo own"}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	job, err := eng.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	_, err = store.Get(context.Background(), jid, false)
	assert.NoError(t, err, "the job is in the store New returned")
}

// clearSeq returns evs with Seq zeroed, to compare events whatever their
// place in the job.
func clearSeq(evs []exe.Event) []exe.Event {
	out := make([]exe.Event, len(evs))
	for i, ev := range evs {
		ev.Seq = 0
		out[i] = ev
	}
	return out
}

// executor runs the suite's commands on hosts a, b and c:
//
//	echo X    each host CHANGED with stdout X
//	gate NAME a "started" event on the first host, then waits until the
//	          test opens NAME (or the run is cancelled)
//	block     a "started" event on the first host, then waits until the
//	          run is cancelled, and FAILED "stopped: CAUSE"
//
// It counts the runs of each command.
type executor struct {
	exe.Only
	t   *testing.T
	inv *inventory.Inventory

	gates   latch.Set     // gate NAME: open once the test opens NAME
	started latch.Set     // command: open once a run of it started
	done    chan struct{} // closed by release: every wait ends
	once    sync.Once

	mu     sync.Mutex
	counts map[string]int
}

func newExecutor(t *testing.T) *executor {
	inv, err := inventory.Static("a", "b", "c")
	require.NoError(t, err)
	return &executor{Only: exe.Only{exe.OpExecute}, t: t, inv: inv, counts: map[string]int{}, done: make(chan struct{})}
}

func (x *executor) Match(_ context.Context, pattern string) ([]string, error) {
	return x.inv.Match(pattern)
}

func (x *executor) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	x.mu.Lock()
	x.counts[args.Cmd]++
	x.mu.Unlock()
	var verb, arg string
	if _, err := fmt.Sscan(args.Cmd, &verb, &arg); err != nil && verb != "block" {
		return exe.Errorf(exe.ErrInvalid, "dispatchtest: unknown command %q", args.Cmd)
	}
	switch verb {
	case "echo":
		for _, h := range hosts {
			emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: arg}})
		}
		return nil
	case "gate", "block":
		emit(exe.Event{Host: hosts[0], Status: exe.HostChanged, Name: "started"})
		x.started.Open(args.Cmd)
		gate := x.gates.Chan(arg)
		if verb == "block" {
			gate = nil
		}
		select {
		case <-gate:
			for _, h := range hosts {
				emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: "opened"}})
			}
			return nil
		case <-ctx.Done():
			emit(exe.Event{Host: hosts[0], Status: exe.HostFailed, Msg: "stopped: " + context.Cause(ctx).Error()})
			return ctx.Err()
		case <-x.done:
			return errors.New("dispatchtest: the test ended")
		}
	}
	return exe.Errorf(exe.ErrInvalid, "dispatchtest: unknown command %q", args.Cmd)
}

// runs counts the runs of cmd.
func (x *executor) runs(cmd string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.counts[cmd]
}

// open lets the runs waiting on gate NAME end.
func (x *executor) open(name string) { x.gates.Open(name) }

// waitStarted waits until a run of cmd has started.
func (x *executor) waitStarted(cmd string) {
	x.t.Helper()
	select {
	case <-x.started.Chan(cmd):
	case <-time.After(wait):
		x.t.Fatalf("dispatchtest: %q did not start", cmd)
	}
}

// release ends every run still waiting, at the end of the test.
func (x *executor) release() { x.once.Do(func() { close(x.done) }) }
