package redis_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/0ops/exed/dispatchtest"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/redistest"
	"github.com/0ops/exed/jobstore/memory"
	exeredis "github.com/0ops/exed/jobstore/redis"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cluster is an API-side engine and a way to start workers, on one Redis.
type cluster struct {
	t      *testing.T
	srv    *redistest.Server
	rdb    *goredis.Client
	store  *exeredis.Store
	engine *exe.Engine
	prefix string
}

func newCluster(t *testing.T) *cluster {
	srv := redistest.Start(t)
	s, rdb, prefix := newStore(t, srv)
	c := &cluster{t: t, srv: srv, rdb: rdb, store: s, prefix: prefix}
	c.engine, _ = c.start(s, &plugintest.Executor{}, exeredis.DispatcherOptions{})
	return c
}

// start starts an Engine on store s with executor x and a Redis
// dispatcher with opts; stop shuts it down (as on SIGTERM) and waits,
// which the test's end does too.
func (c *cluster) start(s *exeredis.Store, x exe.Executor, opts exeredis.DispatcherOptions) (eng *exe.Engine, stop func()) {
	eng, err := exe.NewEngine(exe.Config{Store: s, Executor: x, Dispatcher: exeredis.NewDispatcher(s, opts)})
	require.NoError(c.t, err)
	var once sync.Once
	stop = func() { once.Do(func() { require.NoError(c.t, eng.Shutdown(context.Background())) }) }
	c.t.Cleanup(stop)
	return eng, stop
}

// worker starts a worker (an Engine whose dispatcher runs jobs); stop
// ends it (as on SIGTERM) and waits.
func (c *cluster) worker(opts exeredis.DispatcherOptions) (stop func()) {
	return c.workerWith(&plugintest.Executor{}, opts)
}

// workerWith is worker with executor x.
func (c *cluster) workerWith(x exe.Executor, opts exeredis.DispatcherOptions) (stop func()) {
	if opts.Lease == 0 {
		opts.Lease = 600 * time.Millisecond
	}
	opts.RunJobs = true
	_, stop = c.start(c.store, x, opts)
	return stop
}

func (c *cluster) submit(targets []string, cmd string) string {
	jid, err := c.engine.Submit(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: targets, Execute: exe.ExecuteArgs{Cmd: cmd}})
	require.NoError(c.t, err)
	return jid
}

// wait follows the job to its end.
func (c *cluster) wait(jid string) *exe.Job {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := c.engine.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(c.t, err)
	return job
}

func TestWorkersRunQueuedJobs(t *testing.T) {
	c := newCluster(t)
	// Queued while no worker runs: run when one starts.
	early := c.submit([]string{"a"}, "early")
	c.worker(exeredis.DispatcherOptions{Concurrency: 2})
	c.worker(exeredis.DispatcherOptions{Concurrency: 2})
	jids := []string{early}
	for i := 0; i < 20; i++ {
		jids = append(jids, c.submit([]string{"a", "b", "c"}, "hello"))
	}
	for _, jid := range jids {
		job := c.wait(jid)
		assert.Equal(t, exe.JobDone, job.State, job.Error)
	}
	full, err := c.store.Get(context.Background(), jids[1], true)
	require.NoError(t, err)
	assert.Len(t, full.ReturnData, 3)
	assert.Equal(t, "hello", full.ReturnData["b"][0].Exec.Stdout)
	// The queue keeps only jobs that wait: it does not grow with every
	// job ever run.
	n, err := c.rdb.XLen(context.Background(), c.prefix+"queue").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "queue entries left behind")
}

// ghost starts a worker that takes jobs and never finishes them, on its
// own connection to Redis through a proxy; cut (the proxy's Blackhole)
// makes it a worker that no longer answers: its leases lapse.
func (c *cluster) ghost(opts exeredis.DispatcherOptions) (cut func()) {
	proxy := redistest.NewLossyProxy(c.t, c.srv.Addr)
	rdb := goredis.NewClient(&goredis.Options{Addr: proxy.Addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	c.t.Cleanup(func() { rdb.Close() })
	s := exeredis.New(rdb, exeredis.Options{Prefix: c.prefix})
	opts.Name, opts.Grace, opts.RunJobs = "ghost", time.Millisecond, true
	// Cleanups run last first: Restore resets the stalled connections
	// before the ghost shuts down, so its Redis calls end.
	c.start(s, &stuckExecutor{}, opts)
	c.t.Cleanup(proxy.Restore)
	return proxy.Blackhole
}

// stuckExecutor's deploys start and report nothing until cancelled.
type stuckExecutor struct{ plugintest.Executor }

func (*stuckExecutor) Deploy(ctx context.Context, _ []string, _ exe.DeployArgs, _ exe.Emit) error {
	<-ctx.Done()
	return ctx.Err()
}

// A job whose worker died is failed "worker lost" once; each of its hosts
// without an event gets a FAILED one saying its command may still run, and
// a host that had reported keeps its event.
func TestLapsedLeaseFailsTheJobOnce(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	jid, err := c.engine.Submit(ctx, exe.Request{Operate: exe.OpDeploy, Targets: []string{"a", "b", "c"}, Deploy: exe.DeployArgs{Role: "r"}})
	require.NoError(t, err)
	// A worker that started the job and died: it took the job and its
	// lease, reported host b, then stopped answering.
	cut := c.ghost(exeredis.DispatcherOptions{Lease: 300 * time.Millisecond})
	require.Eventually(t, func() bool {
		n, _ := c.rdb.Exists(ctx, c.prefix+"lease:"+jid).Result()
		return n == 1
	}, 10*time.Second, 5*time.Millisecond, "the ghost starts the job")
	require.NoError(t, c.store.Append(ctx, jid, exe.Event{Host: "b", Status: exe.HostChanged, Msg: "done"}))
	cut()

	c.worker(exeredis.DispatcherOptions{RecoverEvery: 100 * time.Millisecond})
	job := c.wait(jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "worker lost", job.Error)
	full, err := c.store.Get(ctx, jid, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "c"} {
		if assert.Len(t, full.ReturnData[h], 1, h) {
			assert.Equal(t, exe.HostFailed, full.ReturnData[h][0].Status, h)
			assert.Equal(t, "worker lost: the remote command may still be running", full.ReturnData[h][0].Msg, h)
		}
	}
	if assert.Len(t, full.ReturnData["b"], 1) {
		assert.Equal(t, exe.HostChanged, full.ReturnData["b"][0].Status, "a host that reported keeps its event")
	}
	// Its lock is released, and it never runs again.
	jid2, err := c.engine.Submit(ctx, exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: "r"}})
	require.NoError(t, err, "the lost job's lock was released")
	assert.NotEqual(t, jid, jid2)
}

// TestLeaseHeldWhileACancelledJobEnds: a cancelled job is still its
// worker's while its executor reports what the cancel interrupted, for
// longer than a lease: it is not failed as lost meanwhile, and ends
// "cancelled" with that report.
func TestLeaseHeldWhileACancelledJobEnds(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	lease := 300 * time.Millisecond
	c.workerWith(&lingerExecutor{linger: 3 * lease}, exeredis.DispatcherOptions{Lease: lease})
	jid, err := c.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "linger"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := c.store.Get(ctx, jid, true)
		return err == nil && len(j.ReturnData["a"]) > 0
	}, 10*time.Second, 5*time.Millisecond, "the job starts")
	job, err := c.engine.Cancel(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	full, err := c.store.Get(ctx, jid, true)
	require.NoError(t, err)
	evs := full.ReturnData["a"]
	require.Len(t, evs, 2)
	assert.Equal(t, "interrupted", evs[1].Msg)
}

// lingerExecutor's execute runs until cancelled, then takes its time
// (linger) to report its host as interrupted, as a plugin stopping a
// remote command does.
type lingerExecutor struct {
	plugintest.Executor
	linger time.Duration
}

func (x *lingerExecutor) Execute(ctx context.Context, hs []string, _ exe.ExecuteArgs, emit exe.Emit) error {
	emit(exe.Event{Host: hs[0], Status: exe.HostChanged, Name: "started"})
	<-ctx.Done()
	time.Sleep(x.linger) // stopping the command
	emit(exe.Event{Host: hs[0], Status: exe.HostFailed, Msg: "interrupted"})
	return ctx.Err()
}

func TestReadButNotStartedIsClaimed(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	jid := c.submit([]string{"a"}, "claimed")
	// A consumer reads the message and dies before starting the job.
	require.NoError(t, c.rdb.XGroupCreateMkStream(ctx, c.prefix+"queue", "workers", "0").Err())
	res, err := c.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "workers", Consumer: "dead",
		Streams: []string{c.prefix + "queue", ">"}, Count: 1}).Result()
	require.NoError(t, err)
	require.Len(t, res[0].Messages, 1)

	c.worker(exeredis.DispatcherOptions{ClaimIdle: 200 * time.Millisecond})
	job := c.wait(jid)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
}

func TestCancelReachesTheWorker(t *testing.T) {
	c := newCluster(t)
	c.worker(exeredis.DispatcherOptions{})
	jid := c.submit([]string{"a"}, "block")
	ctx := context.Background()
	started := make(chan struct{})
	go func() {
		_, _ = c.engine.Follow(ctx, jid, func(exe.Event) error {
			select {
			case <-started:
			default:
				close(started)
			}
			return nil
		})
	}()
	<-started
	_, err := c.engine.Cancel(ctx, jid)
	require.NoError(t, err)
	job := c.wait(jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	// The worker's slot is free again: its run ended.
	assert.Equal(t, exe.JobDone, c.wait(c.submit([]string{"a"}, "next")).State)
}

func TestShutdownFailsRunningJobsAfterGrace(t *testing.T) {
	c := newCluster(t)
	stop := c.worker(exeredis.DispatcherOptions{Grace: 100 * time.Millisecond})
	jid := c.submit([]string{"a"}, "block")
	require.Eventually(t, func() bool {
		j, err := c.store.Get(context.Background(), jid, true)
		return err == nil && len(j.ReturnData["a"]) > 0
	}, 10*time.Second, 5*time.Millisecond)
	stop()
	job := c.wait(jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "server shutdown", job.Error)
}

func TestDispatcherConformance(t *testing.T) {
	srv := redistest.Start(t)
	dispatchtest.Run(t, func(t *testing.T, opts dispatchtest.Options) (exe.JobStore, exe.Dispatcher) {
		s, _, _ := newStore(t, srv)
		return s, exeredis.NewDispatcher(s, exeredis.DispatcherOptions{RunJobs: true, Concurrency: opts.Workers,
			Grace: opts.Grace, Lease: 2 * time.Second})
	})
}

// A job is never stored in one place and looked for in another: an
// Engine whose store is not its Redis dispatcher's (a memory store, or a
// store under another prefix) is refused, and an Engine given no store
// takes the dispatcher's, on whose client and prefix the job is stored,
// queued, run and found.
func TestEngineOnAnotherStoreIsRefused(t *testing.T) {
	srv := redistest.Start(t)
	storeA, rdb, prefixA := newStore(t, srv)
	storeB, _, _ := newStore(t, srv)
	x := &plugintest.Executor{}
	for name, cfg := range map[string]exe.Config{
		"memory store": {Store: memory.New(memory.Options{}), Executor: x,
			Dispatcher: exeredis.NewDispatcher(storeA, exeredis.DispatcherOptions{RunJobs: true})},
		"store of another prefix": {Store: storeA, Executor: x,
			Dispatcher: exeredis.NewDispatcher(storeB, exeredis.DispatcherOptions{RunJobs: true})},
	} {
		_, err := exe.NewEngine(cfg)
		assert.ErrorContains(t, err, "is not the store of Config.Dispatcher (*redis.Dispatcher): jobs would be stored in one and looked for in the other", name)
	}
	_, err := exe.NewEngine(exe.Config{Executor: x, Dispatcher: exeredis.NewDispatcher(nil, exeredis.DispatcherOptions{})})
	assert.EqualError(t, err, "exe: Config.Dispatcher (*redis.Dispatcher) has no job store")
	var noClient *goredis.Client
	assert.PanicsWithValue(t, "jobstore/redis: New needs a go-redis client, not nil", func() { exeredis.New(noClient, exeredis.Options{}) },
		"at once, in the caller, rather than at the first call in a worker's goroutine")
	_, err = exe.NewEngine(exe.Config{Executor: x, Dispatcher: exeredis.NewDispatcher(storeA, exeredis.DispatcherOptions{Grace: -time.Second})})
	assert.EqualError(t, err, "redis dispatcher: DispatcherOptions.Grace is negative (zero means the default)")

	eng, err := exe.NewEngine(exe.Config{Executor: x, Dispatcher: exeredis.NewDispatcher(storeA, exeredis.DispatcherOptions{RunJobs: true})})
	require.NoError(t, err)
	defer eng.Shutdown(context.Background())
	ctx := context.Background()
	jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "stream 1"}})
	require.NoError(t, err)
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	job, err := eng.Follow(fctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	n, err := rdb.Exists(ctx, prefixA+"job:"+jid).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the job is kept under the dispatcher's store's prefix")
}

// TestCancelledWhileQueuedNeverRuns: a queued job's cancel is asked, and
// its canceller does not end the job itself (the API process stopped, or
// Redis failed it, between its Dispatcher.Cancel and its end of the job):
// a worker then takes the job. It never runs: its hosts are SKIPPED
// "cancelled before start", as when the API ends it, rather than its
// command started and then stopped at the first lease renewal.
func TestCancelledWhileQueuedNeverRuns(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	jid := c.submit([]string{"a", "b"}, "queued")
	err := exeredis.NewDispatcher(c.store, exeredis.DispatcherOptions{}).Cancel(ctx, jid)
	require.ErrorIs(t, err, exe.ErrNotRunning)
	x := newGatedExecutor()
	c.workerWith(x, exeredis.DispatcherOptions{})
	job := c.wait(jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, exe.ErrCancelled.Error(), job.Error)
	full, err := c.store.Get(ctx, jid, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "b"} {
		want := exe.NotStarted(h, exe.ErrCancelled)
		if evs := full.ReturnData[h]; assert.Len(t, evs, 1, h) {
			assert.Equal(t, []any{want.Status, want.Msg}, []any{evs[0].Status, evs[0].Msg}, h)
		}
	}
	assert.Zero(t, x.runsOf("queued"), "the command never started")
}

// TestCancelledWhileQueuedFreesLocksAtOnce: a deploy cancelled while
// queued is taken by a worker, which skips it under its live lease:
// nothing ran, so its host is free again as soon as it ended, not when
// the lease would lapse.
func TestCancelledWhileQueuedFreesLocksAtOnce(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	deploy := func(role string) (string, error) {
		return c.engine.Submit(ctx, exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: role}})
	}
	jid, err := deploy("queued")
	require.NoError(t, err)
	require.ErrorIs(t, exeredis.NewDispatcher(c.store, exeredis.DispatcherOptions{}).Cancel(ctx, jid), exe.ErrNotRunning)
	x := newGatedExecutor()
	// A long lease, which a held lock would outlast the test by; a short
	// ClaimIdle, so that a start that failed under load is retried soon.
	c.workerWith(x, exeredis.DispatcherOptions{Lease: time.Minute, ClaimIdle: time.Second})
	job := c.wait(jid)
	assert.Equal(t, exe.ErrCancelled.Error(), job.Error)
	full, err := c.store.Get(ctx, jid, true)
	require.NoError(t, err)
	if evs := full.ReturnData["a"]; assert.Len(t, evs, 1) {
		assert.Equal(t, exe.HostSkipped, evs[0].Status)
	}
	assert.Zero(t, x.runsOf("queued"), "the deploy never started")
	_, err = deploy("next")
	assert.NoError(t, err, "a is free as soon as the skipped job ended")
}

// A worker that gets jobs one at a time (each ends before the next is
// submitted) reads each with a blocking read and starts it: it tries no
// take first, which would find the queue empty, a script call per job
// for nothing.
func TestWorkerTakingJobsOneAtATimeTriesNoEmptyTake(t *testing.T) {
	c := newCluster(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: c.srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	s := exeredis.New(rdb, exeredis.Options{Prefix: c.prefix, Retention: time.Hour})
	t.Cleanup(func() { s.Close() })
	takes := &takeCount{queue: c.prefix + "queue"}
	rdb.AddHook(eachCmd(takes.note))
	// A lease long enough that no recovery round (every Lease/4) and no
	// claim (every ClaimIdle/2) comes within the test.
	c.start(s, &plugintest.Executor{}, exeredis.DispatcherOptions{RunJobs: true, Lease: time.Minute, ClaimIdle: time.Minute})
	// Two jobs first: the first may be taken by a take (when it is queued
	// before the worker's first one), which the worker follows with
	// another; the second finds the worker in its steady state.
	for i := 0; i < 2; i++ {
		assert.Equal(t, exe.JobDone, c.wait(c.submit([]string{"a"}, "first")).State)
	}
	before := takes.n.Load()
	const jobs = 20
	for i := 0; i < jobs; i++ {
		job := c.wait(c.submit([]string{"a"}, "hello"))
		require.Equal(t, exe.JobDone, job.State, job.Error)
	}
	// One take may still come late from the warm-up, on a slow machine;
	// one per job is what the loop did when it always tried one first.
	assert.LessOrEqual(t, takes.n.Load()-before, int64(1),
		"takes tried by the worker for %d jobs submitted one at a time", jobs)
}

// takeCount counts the take script's calls: the scripts whose first key
// is the queue (its note, as an eachCmd hook).
type takeCount struct {
	queue string
	n     atomic.Int64
}

// note counts cmd if it calls a script whose first key is the queue:
// EVALSHA (or EVAL) script numkeys key ...
func (c *takeCount) note(cmd goredis.Cmder) {
	if args := cmd.Args(); isScript(cmd) && len(args) > 3 && args[3] == c.queue {
		c.n.Add(1)
	}
}

// A job queued twice (a Dispatch retried after its reply was lost, say)
// runs once, even when its second message reaches the very worker that
// runs it: the start tells its own call retried (the same message) from
// another message of the job.
func TestJobQueuedTwiceRunsOnceOnTheWorkerThatRunsIt(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	x := newGatedExecutor()
	stop := c.workerWith(x, exeredis.DispatcherOptions{Concurrency: 4})
	jid := c.submit([]string{"a"}, "once")
	require.Eventually(t, func() bool { return x.runsOf("once") == 1 }, 10*time.Second, time.Millisecond, "the job did not start")
	// The worker waits on the queue again (the only client blocked in
	// this Redis): the second message reaches it, not a take.
	require.Eventually(t, func() bool { return redistest.BlockedClients(t, c.rdb) > 0 }, 10*time.Second, time.Millisecond,
		"the worker does not wait on the queue")
	require.NoError(t, exeredis.NewDispatcher(c.store, exeredis.DispatcherOptions{}).Dispatch(ctx, jid))
	require.Eventually(t, func() bool { return c.rdb.XLen(ctx, c.prefix+"queue").Val() == 0 }, 10*time.Second, time.Millisecond,
		"the second message was not read")
	x.open()
	job := c.wait(jid)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	stop() // waits for every run the worker started
	assert.Equal(t, 1, x.runsOf("once"), "runs of a job queued twice")
}
