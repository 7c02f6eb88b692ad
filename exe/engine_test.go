package exe_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/dispatchtest"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type harness struct {
	engine *exe.Engine
	store  *memory.Store
}

// newHarness wires the embedded default: memory store, local dispatcher,
// sshnative with localhost, plus the given tasks.
func newHarness(t *testing.T, opts exe.LocalOptions, tasks map[string]exe.Task) *harness {
	t.Helper()
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Dispatcher: exe.NewLocalDispatcher(opts), Executor: x, Tasks: tasks,
		SyncTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return &harness{engine: eng, store: store}
}

func (h *harness) wait(t *testing.T, jid string) (*exe.Job, []exe.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var evs []exe.Event
	job, err := h.engine.Follow(ctx, jid, func(ev exe.Event) error { evs = append(evs, ev); return nil })
	require.NoError(t, err)
	return job, evs
}

func execute(cmd string) exe.Request {
	return exe.Request{Operate: exe.OpExecute, Targets: []string{"localhost"}, Execute: exe.ExecuteArgs{Cmd: cmd}}
}

func TestSubmitRunsToDone(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{}, nil)
	jid, err := h.engine.Submit(context.Background(), execute("echo hi"))
	require.NoError(t, err)
	job, evs := h.wait(t, jid)
	assert.Equal(t, exe.JobDone, job.State)
	assert.Empty(t, job.Error)
	assert.NotZero(t, job.EndAt)
	require.Len(t, evs, 1)
	assert.Equal(t, "localhost", evs[0].Host)
	assert.Equal(t, "hi\n", evs[0].Exec.Stdout)

	full, err := h.engine.Job(context.Background(), jid, true)
	require.NoError(t, err)
	assert.Equal(t, "hi\n", full.ReturnData["localhost"][0].Exec.Stdout)
}

func TestOutcomeCountsFailedHosts(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{}, nil)
	jid, err := h.engine.Submit(context.Background(), execute("exit 4"))
	require.NoError(t, err)
	job, evs := h.wait(t, jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "1 of 1 hosts failed", job.Error)
	require.Len(t, evs, 1)
	assert.Equal(t, 4, evs[0].Exec.RTC)
}

func TestSubmitRefusalsLeaveNothing(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{}, nil)
	ctx := context.Background()
	_, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"localhost", "ghost1", "ghost2"}})
	var nm *exe.NoMatchError
	require.ErrorAs(t, err, &nm)
	assert.Equal(t, "no hosts match that target: ghost1, ghost2", err.Error())

	for _, req := range []exe.Request{
		{Operate: exe.OpPing},
		{Operate: exe.OpExecute, Targets: []string{"localhost"}},
		{Operate: exe.OpService, Targets: []string{"localhost"}, Service: exe.ServiceArgs{Name: "x", State: 3}},
		{Operate: exe.OpService, Targets: []string{"localhost"}, Service: exe.ServiceArgs{Name: "a;b"}},
		{Operate: exe.OpDeploy, Targets: []string{"localhost"}},
		{Operate: exe.OpDeploy, Targets: []string{"localhost"}, Deploy: exe.DeployArgs{Role: "../etc"}},
		{Operate: exe.OpTask, Targets: []string{"localhost"}},
		{Operate: exe.OpTask, Targets: []string{"localhost"}, Task: exe.TaskArgs{Type: "nope"}},
		{Operate: exe.OpPing, Targets: []string{"bad host"}},
		{Operate: "reboot", Targets: []string{"localhost"}},
	} {
		_, err := h.engine.Submit(ctx, req)
		assert.ErrorIs(t, err, exe.ErrInvalid, "%+v", req)
	}
	ids, err := h.engine.Jobs(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "refused requests store nothing")
}

func TestRunSync(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{}, nil)
	ctx := context.Background()
	out, err := h.engine.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]exe.Event{"localhost": {Host: "localhost", Status: exe.HostOK}}, out)

	out, err = h.engine.RunSync(ctx, execute("echo sync"))
	require.NoError(t, err)
	assert.Equal(t, "sync\n", out["localhost"].Exec.Stdout)

	_, err = h.engine.RunSync(ctx, exe.Request{Operate: exe.OpDeploy, Targets: []string{"localhost"}, Deploy: exe.DeployArgs{Role: "r"}})
	assert.ErrorIs(t, err, exe.ErrInvalid, "deploy is async only")
	_, err = h.engine.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"ghost"}})
	assert.ErrorIs(t, err, exe.ErrNoMatch)

	hosts, err := h.engine.Match(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"localhost"}, hosts)
}

func TestRunSyncTimeout(t *testing.T) {
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, SyncTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	out, err := eng.RunSync(context.Background(), execute("sleep 30"))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Equal(t, exe.HostFailed, out["localhost"].Status)
}

// An executor that returns its context's error when the sync timeout
// interrupts it (as a plugin without Cancel, or the ansible executor,
// does) still gives a result for every host.
func TestRunSyncTimeoutIsNoError(t *testing.T) {
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: &plugintest.Executor{},
		SyncTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	out, err := eng.RunSync(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"},
		Execute: exe.ExecuteArgs{Cmd: "block"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]exe.Event{
		"a": {Host: "a", Status: exe.HostFailed, Name: "stopped", Msg: "context deadline exceeded"},
		"b": {Host: "b", Status: exe.HostFailed, Msg: "timed out"},
	}, out)
}

func TestCancelRunningJob(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{}, nil)
	ctx := context.Background()
	jid, err := h.engine.Submit(ctx, execute("sleep 60"))
	require.NoError(t, err)
	job, err := h.engine.Cancel(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	final, _ := h.wait(t, jid)
	assert.Equal(t, "cancelled", final.Error)

	_, err = h.engine.Cancel(ctx, jid)
	assert.ErrorIs(t, err, exe.ErrFinished)
	require.NoError(t, h.engine.Delete(ctx, jid))
	_, err = h.engine.Cancel(ctx, jid)
	assert.ErrorIs(t, err, exe.ErrNotFound)
}

func TestQueueFullIsBusyAndLeavesNothing(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{Workers: 1, Queue: 1}, nil)
	ctx := context.Background()
	var accepted []string
	var busy error
	for i := 0; i < 3 && busy == nil; i++ {
		jid, err := h.engine.Submit(ctx, execute("sleep 60"))
		if err != nil {
			busy = err
			break
		}
		accepted = append(accepted, jid)
	}
	require.Error(t, busy, "one worker and a queue of one cannot take three jobs")
	assert.ErrorIs(t, busy, exe.ErrBusy)
	assert.Contains(t, busy.Error(), "queue is full")
	ids, err := h.engine.Jobs(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, accepted, ids, "the refused job was not kept")
	for _, jid := range accepted {
		_, err := h.engine.Cancel(ctx, jid)
		require.NoError(t, err)
	}
}

func TestShutdownFailsUnfinishedJobs(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{Workers: 1, Queue: 4, Grace: 100 * time.Millisecond}, nil)
	ctx := context.Background()
	pidFile := filepath.Join(t.TempDir(), "pid")
	running, err := h.engine.Submit(ctx, execute("echo $$ > "+pidFile+"; sleep 60"))
	require.NoError(t, err)
	queued, err := h.engine.Submit(ctx, execute("echo never"))
	require.NoError(t, err)
	testenv.WaitPIDFile(t, pidFile, 10*time.Second)

	require.NoError(t, h.engine.Shutdown(ctx))
	for jid, last := range map[string]exe.Event{
		running: {Host: "localhost", Seq: 1, Status: exe.HostFailed, Msg: "server shutdown", Exec: &exe.ExecResult{RTC: -1}},
		queued:  {Host: "localhost", Seq: 1, Status: exe.HostSkipped, Msg: "not started: server shutdown"},
	} {
		job, err := h.engine.Job(ctx, jid, true)
		require.NoError(t, err)
		assert.Equal(t, exe.JobFailure, job.State, jid)
		assert.Equal(t, "server shutdown", job.Error)
		assert.Equal(t, []exe.Event{last}, job.ReturnData["localhost"], "each host says what happened to it")
	}
	_, err = h.engine.Submit(ctx, execute("true"))
	assert.ErrorIs(t, err, exe.ErrBusy, "no jobs are taken after shutdown")
	assert.ErrorIs(t, h.engine.Health(ctx), exe.ErrUnavailable)
}

// echoTask is a small task used to exercise the engine's task path: it runs
// its "cmd" option on every host through the executor it is handed.
type echoTask struct{}

func (echoTask) Info(context.Context) (exe.TaskInfo, error) {
	return exe.TaskInfo{Type: "echo", Description: "runs cmd everywhere", Options: exe.Schema{
		Type: "object",
		Properties: map[string]exe.Property{
			"cmd":   {Type: []string{"string"}},
			"times": {Type: []string{"integer"}, Default: 1.0},
		},
		Required: []string{"cmd"},
	}}, nil
}

func (echoTask) Run(ctx context.Context, x exe.Executor, hosts []string, args exe.TaskArgs, emit exe.Emit) error {
	for i := 0; i < int(args.Options["times"].(float64)); i++ {
		emit(exe.Event{Host: exe.AnnounceHost, Status: exe.HostAnnounce, Name: "round"})
		if err := x.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: args.Options["cmd"].(string)}, emit); err != nil {
			return err
		}
	}
	return nil
}

func TestTaskJob(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{}, map[string]exe.Task{"echo": echoTask{}})
	ctx := context.Background()
	task := func(opts map[string]any) exe.Request {
		return exe.Request{Operate: exe.OpTask, Targets: []string{"localhost"},
			Task: exe.TaskArgs{Type: "echo", Options: opts}}
	}
	for opts, want := range map[*map[string]any]string{
		{}:                               `taskopts: option "cmd" is required`,
		{"cmd": 1.0}:                     `taskopts: option "cmd" must be of type string`,
		{"cmd": "x", "times": 1.5}:       `taskopts: option "times" must be of type integer`,
		{"cmd": "x", "unknown": "value"}: `taskopts: unknown option "unknown"`,
	} {
		_, err := h.engine.Submit(ctx, task(*opts))
		assert.ErrorIs(t, err, exe.ErrInvalid)
		assert.EqualError(t, err, want)
	}

	jid, err := h.engine.Submit(ctx, task(map[string]any{"cmd": "echo task", "times": 2.0}))
	require.NoError(t, err)
	job, evs := h.wait(t, jid)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	assert.Equal(t, "echo", job.Task.Name, "taskname defaults to the type")
	require.Len(t, evs, 4)
	assert.Equal(t, exe.AnnounceHost, evs[0].Host)
	assert.Equal(t, "task\n", evs[3].Exec.Stdout)

	// A second task on the same host conflicts while the first runs.
	long, err := h.engine.Submit(ctx, task(map[string]any{"cmd": "sleep 60"}))
	require.NoError(t, err)
	_, err = h.engine.Submit(ctx, task(map[string]any{"cmd": "true"}))
	assert.ErrorIs(t, err, exe.ErrConflict)
	_, err = h.engine.Cancel(ctx, long)
	require.NoError(t, err)
	again, err := h.engine.Submit(ctx, task(map[string]any{"cmd": "true"}))
	require.NoError(t, err, "cancel released the lock")
	job, _ = h.wait(t, again)
	assert.Equal(t, exe.JobDone, job.State)

	infos, err := h.engine.TaskInfos(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, "echo", infos[0].Type)
}

// silentExecutor reports nothing for its hosts: the runner must not count
// silence as success.
type silentExecutor struct{ exe.Executor }

func (silentExecutor) Ping(context.Context, []string, exe.Emit) error { return nil }

func TestSilentHostsFail(t *testing.T) {
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	runner := &exe.Runner{Store: store, Executor: silentExecutor{x}}
	job := &exe.Job{JID: "j1", Request: exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}}}
	require.NoError(t, store.Create(context.Background(), job))
	require.NoError(t, runner.Run(context.Background(), "j1"))
	got, err := store.Get(context.Background(), "j1", true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, got.State)
	assert.Equal(t, "1 of 1 hosts failed", got.Error)
	assert.Equal(t, exe.HostUnreachable, got.ReturnData["localhost"][0].Status)
}

func TestConcurrentSubmitsAllFinish(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{Workers: 4, Queue: 256}, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jid, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}})
			if err != nil {
				errs <- err
				return
			}
			job, err := h.engine.Follow(ctx, jid, func(exe.Event) error { return nil })
			if err == nil && job.State != exe.JobDone {
				err = errors.New("job " + jid + " ended " + job.State.String())
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Shutdown stops intake at once; the running job gets its grace, and a
// follow of it sees it end; then the follows of jobs that do not end here
// (another process runs them) end, with a cause that says why.
func TestShutdownStopsIntakeThenEndsFollows(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{Grace: 100 * time.Millisecond}, nil)
	ctx := context.Background()
	pidFile := filepath.Join(t.TempDir(), "pid")
	jid, err := h.engine.Submit(ctx, execute("echo $$ > "+pidFile+"; sleep 60"))
	require.NoError(t, err)
	testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	elsewhere := &exe.Job{JID: "elsewhere", State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}}}
	require.NoError(t, h.store.Create(ctx, elsewhere))
	type result struct {
		job *exe.Job
		err error
	}
	follow := func(jid string) chan result {
		ch := make(chan result, 1)
		go func() {
			job, err := h.engine.Follow(ctx, jid, func(exe.Event) error { return nil })
			ch <- result{job, err}
		}()
		return ch
	}
	mine, other := follow(jid), follow(elsewhere.JID)

	require.NoError(t, h.engine.Shutdown(ctx))
	for _, c := range []struct {
		ch   chan result
		name string
	}{{mine, "the follow of the job that ended"}, {other, "the follow of the job run elsewhere"}} {
		select {
		case r := <-c.ch:
			if c.ch == mine {
				require.NoError(t, r.err, c.name)
				assert.Equal(t, "server shutdown", r.job.Error, c.name)
			} else {
				assert.ErrorIs(t, r.err, exe.ErrShutdown, c.name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not end", c.name)
		}
	}
	_, err = h.engine.Submit(ctx, execute("true"))
	assert.ErrorIs(t, err, exe.ErrBusy)
	assert.Equal(t, "server is shutting down", exe.PublicMessage(err))
	_, err = h.engine.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}})
	assert.ErrorIs(t, err, exe.ErrBusy, "sync requests too")
	err = h.engine.Health(ctx)
	assert.ErrorIs(t, err, exe.ErrShutdown, "health says why")
	assert.Equal(t, "server is shutting down", exe.PublicMessage(err))
	job, err := h.engine.Job(ctx, jid, false)
	require.NoError(t, err, "queries still answer")
	assert.Equal(t, "server shutdown", job.Error)
	require.NoError(t, h.engine.Shutdown(ctx), "a second Shutdown is harmless")
}

// The Engine builds the runner and starts its dispatcher, which serves it
// alone; without one, jobs run in process.
func TestEngineStartsItsDispatcher(t *testing.T) {
	store := memory.New(memory.Options{})
	x := &plugintest.Executor{}
	d := exe.NewLocalDispatcher(exe.LocalOptions{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, Dispatcher: d})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	_, err = exe.NewEngine(exe.Config{Store: store, Executor: x, Dispatcher: d})
	assert.ErrorContains(t, err, "a dispatcher serves one engine")

	def, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	t.Cleanup(func() { _ = def.Shutdown(context.Background()) })
	ctx := context.Background()
	jid, err := def.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a"}})
	require.NoError(t, err)
	job, err := def.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, job.State)
}

// A sync operation under way when Shutdown begins gets until Shutdown's
// context is done; then it is cancelled, and every host still answers:
// the one done with its result, the one running FAILED with what it
// printed, the one never started FAILED "server shutdown", as a timeout
// would have them.
func TestShutdownCancelsSyncOperations(t *testing.T) {
	h := localFleet(t, exe.LocalOptions{})
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	answered := make(chan map[string]exe.Event, 1)
	go func() {
		out, err := h.engine.RunSync(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b", "c"},
			Execute: exe.ExecuteArgs{Cmd: firstFastThenStuck(dir, pidFile)}})
		assert.NoError(t, err)
		answered <- out
	}()
	pid := testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, h.engine.Shutdown(ctx))
	// Shutdown waited for the operation: its stuck command has ended. The
	// answer itself reaches this goroutine a moment after RunSync returns.
	assert.True(t, testenv.Ended(pid), "the stuck command outlived Shutdown")
	select {
	case out := <-answered:
		require.Len(t, out, 3)
		assert.Equal(t, exe.HostChanged, out["a"].Status)
		assert.Equal(t, exe.HostFailed, out["b"].Status)
		assert.Equal(t, "server shutdown", out["b"].Msg)
		assert.Equal(t, "started\n", out["b"].Exec.Stdout)
		assert.Equal(t, exe.Event{Host: "c", Status: exe.HostFailed, Msg: "server shutdown"}, out["c"])
	case <-time.After(10 * time.Second):
		t.Fatal("the sync operation did not answer after Shutdown")
	}
}

func TestLocalDispatcherConformance(t *testing.T) {
	dispatchtest.Run(t, func(t *testing.T, opts dispatchtest.Options) (exe.JobStore, exe.Dispatcher) {
		return memory.New(memory.Options{}), exe.NewLocalDispatcher(exe.LocalOptions{Workers: opts.Workers, Grace: opts.Grace})
	})
}
