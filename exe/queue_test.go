package exe_test

import (
	"context"
	"strings"
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

// queueWait bounds every wait of the queue tests.
const queueWait = 30 * time.Second

// gated is an executor on hosts a and b that records the order in which
// operations start. "wait NAME" runs until the test opens NAME (or its run
// is cancelled); any other command, and a deploy, ends at once, each host
// CHANGED. The thing under test is the dispatcher, not the executor.
type gated struct {
	exe.Only
	inv *inventory.Inventory

	gates   latch.Set // "wait NAME" ends once NAME is open
	started latch.Set // op: open once it started

	mu    sync.Mutex
	order []string
}

func newGated(t *testing.T) *gated {
	inv, err := inventory.Static("a", "b")
	require.NoError(t, err)
	return &gated{Only: exe.Only{exe.OpExecute, exe.OpDeploy}, inv: inv}
}

func (g *gated) Match(_ context.Context, pattern string) ([]string, error) {
	return g.inv.Match(pattern)
}

func (g *gated) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	g.begin(args.Cmd)
	if name, ok := strings.CutPrefix(args.Cmd, "wait "); ok {
		select {
		case <-g.gates.Chan(name):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: args.Cmd}})
	}
	return nil
}

func (g *gated) Deploy(_ context.Context, hosts []string, args exe.DeployArgs, emit exe.Emit) error {
	g.begin("deploy " + args.Role)
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Name: args.Role})
	}
	return nil
}

// begin records that op started.
func (g *gated) begin(op string) {
	g.mu.Lock()
	g.order = append(g.order, op)
	g.mu.Unlock()
	g.started.Open(op)
}

// open lets "wait NAME" end.
func (g *gated) open(name string) { g.gates.Open(name) }

// release opens every gate, so that a test that stops early does not
// leave a run waiting for its grace period.
func (g *gated) release() { g.gates.OpenAll() }

func (g *gated) waitStarted(t *testing.T, op string) {
	t.Helper()
	select {
	case <-g.started.Chan(op):
	case <-time.After(queueWait):
		t.Fatalf("%q did not start", op)
	}
}

func (g *gated) ran() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.order...)
}

// queueEngine is an Engine on a memory store and a LocalDispatcher with
// opts, running jobs with a gated executor.
func queueEngine(t *testing.T, opts exe.LocalOptions) (*exe.Engine, *memory.Store, *gated) {
	t.Helper()
	g := newGated(t)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: g, Dispatcher: exe.NewLocalDispatcher(opts)})
	require.NoError(t, err)
	t.Cleanup(func() {
		g.release()
		_ = eng.Shutdown(context.Background())
	})
	return eng, store, g
}

func run(cmd string) exe.Request {
	return exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: cmd}}
}

func deploy(role string) exe.Request {
	return exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: role}}
}

// waitEnd waits until the job has ended and returns it with its events.
func waitEnd(t *testing.T, eng *exe.Engine, jid string) *exe.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	_, err := eng.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err, "job %s ends", jid)
	job, err := eng.Job(context.Background(), jid, true)
	require.NoError(t, err)
	return job
}

// A job cancelled while it waits for a worker leaves the queue at once:
// the queue's bound counts only the jobs that still wait, and its
// refusal says how many do. The jobs left run first in first out, and
// the cancelled ones never run; a cancelled deploy's host lock is free
// for the next one.
func TestCancelledQueuedJobFreesItsPlace(t *testing.T) {
	eng, _, g := queueEngine(t, exe.LocalOptions{Workers: 1, Queue: 2})
	ctx := context.Background()
	busy, err := eng.Submit(ctx, run("wait busy"))
	require.NoError(t, err)
	g.waitStarted(t, "wait busy")
	b, err := eng.Submit(ctx, run("echo b"))
	require.NoError(t, err)
	c, err := eng.Submit(ctx, deploy("c"))
	require.NoError(t, err)
	_, err = eng.Submit(ctx, run("echo refused"))
	require.ErrorIs(t, err, exe.ErrBusy)
	assert.Equal(t, "job queue is full (2 jobs waiting); try again later", err.Error())

	for _, jid := range []string{b, c} {
		job, err := eng.Cancel(ctx, jid)
		require.NoError(t, err)
		assert.Equal(t, "cancelled", job.Error)
	}
	// Nothing waits now: two jobs fit, and a third is refused.
	d, err := eng.Submit(ctx, deploy("d"))
	require.NoError(t, err, "the cancelled jobs no longer hold the queue (nor the deploy's host)")
	e, err := eng.Submit(ctx, run("echo e"))
	require.NoError(t, err, "the cancelled jobs no longer hold the queue")
	_, err = eng.Submit(ctx, run("echo refused"))
	require.ErrorIs(t, err, exe.ErrBusy)
	assert.Equal(t, "job queue is full (2 jobs waiting); try again later", err.Error())

	g.open("busy")
	for _, jid := range []string{busy, d, e} {
		assert.Equal(t, exe.JobDone, waitEnd(t, eng, jid).State, jid)
	}
	assert.Equal(t, []string{"wait busy", "deploy d", "echo e"}, g.ran(), "in order, the cancelled ones not at all")
	job := waitEnd(t, eng, b)
	assert.Equal(t, []exe.Event{{Host: "a", Seq: 1, Status: exe.HostSkipped, Msg: "cancelled before start"}}, job.ReturnData["a"])
}

// Shutdown ends the jobs that wait for a worker at once, as never
// started, while the worker still runs its job within the grace period.
func TestShutdownEndsQueuedJobsAtOnce(t *testing.T) {
	eng, store, g := queueEngine(t, exe.LocalOptions{Workers: 1, Queue: 4, Grace: 10 * time.Minute})
	ctx := context.Background()
	busy, err := eng.Submit(ctx, run("wait busy"))
	require.NoError(t, err)
	g.waitStarted(t, "wait busy")
	queued, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"},
		Execute: exe.ExecuteArgs{Cmd: "echo queued"}})
	require.NoError(t, err)

	stopped := make(chan error, 1)
	go func() { stopped <- eng.Shutdown(ctx) }()
	job := waitEnd(t, eng, queued)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "server shutdown", job.Error)
	for _, h := range []string{"a", "b"} {
		require.Len(t, job.ReturnData[h], 1, h)
		assert.Equal(t, exe.NotStarted(h, exe.ErrShutdown).Msg, job.ReturnData[h][0].Msg, h)
	}
	running, err := store.Get(ctx, busy, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobRunning, running.State, "the worker is still in its grace period")

	g.open("busy")
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(queueWait):
		t.Fatal("Shutdown did not return")
	}
	assert.Equal(t, exe.JobDone, waitEnd(t, eng, busy).State)
	assert.Equal(t, []string{"wait busy"}, g.ran(), "the queued job never ran")
}
