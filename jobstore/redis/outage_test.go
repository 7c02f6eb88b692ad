package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/redistest"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverClient is a client with the options exed's server and workers
// use: calls fail within seconds while Redis does not answer.
func serverClient(t *testing.T, addr string) *goredis.Client {
	return clientWithin(t, addr, 3*time.Second)
}

// clientWithin is serverClient with calls failing after timeout.
func clientWithin(t *testing.T, addr string, timeout time.Duration) *goredis.Client {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: timeout, ReadTimeout: timeout,
		WriteTimeout: timeout, PoolTimeout: timeout, MaxRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// gatedExecutor runs "execute" as a command that starts, waits for the
// gate to open, and ends with its command line as output. It counts the
// runs of each command line. A command line that begins "quiet" reports
// nothing until it ends. A deploy runs as the command line that is its
// role would. It notes the runs that were stopped (their context ended).
type gatedExecutor struct {
	plugintest.Executor

	mu      sync.Mutex
	gate    chan struct{}
	runs    map[string]int
	stopped map[string]int
}

func newGatedExecutor() *gatedExecutor {
	return &gatedExecutor{gate: make(chan struct{}), runs: map[string]int{}, stopped: map[string]int{}}
}

// open lets the commands started so far end; later ones wait again.
func (x *gatedExecutor) open() {
	x.mu.Lock()
	defer x.mu.Unlock()
	close(x.gate)
	x.gate = make(chan struct{})
}

func (x *gatedExecutor) Execute(ctx context.Context, hs []string, args exe.ExecuteArgs, emit exe.Emit) error {
	x.mu.Lock()
	x.runs[args.Cmd]++
	gate := x.gate
	x.mu.Unlock()
	for _, h := range hs {
		if !strings.HasPrefix(args.Cmd, "quiet") {
			emit(exe.Event{Host: h, Status: exe.HostChanged, Name: "started"})
		}
	}
	select {
	case <-gate:
	case <-ctx.Done():
		x.mu.Lock()
		x.stopped[args.Cmd]++
		x.mu.Unlock()
		return ctx.Err()
	}
	for _, h := range hs {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: args.Cmd}})
	}
	return nil
}

func (x *gatedExecutor) Deploy(ctx context.Context, hs []string, args exe.DeployArgs, emit exe.Emit) error {
	return x.Execute(ctx, hs, exe.ExecuteArgs{Cmd: args.Role}, emit)
}

func (x *gatedExecutor) runsOf(cmd string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.runs[cmd]
}

// stoppedRuns is how many runs of cmd were stopped before the gate
// opened.
func (x *gatedExecutor) stoppedRuns(cmd string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.stopped[cmd]
}

// outageCluster is an API engine with the lost-lease recovery an API
// process runs, and two workers running gated commands, each process
// with its own Redis client, on one redis-server.
type outageCluster struct {
	engine *exe.Engine
	disp   *exeredis.Dispatcher // the API engine's
	store  *exeredis.Store
	x      *gatedExecutor
	prefix string
}

func newOutageCluster(t *testing.T, addr string, lease time.Duration) *outageCluster {
	return newOutageClusterOn(t, addr, addr, lease, 3*time.Second)
}

// newOutageClusterOn is newOutageCluster with the API process on apiAddr
// and the workers on workerAddr, their calls failing after timeout.
// With a cancelWait, the API engine's Config.CancelWait is that.
func newOutageClusterOn(t *testing.T, apiAddr, workerAddr string, lease, timeout time.Duration, cancelWait ...time.Duration) *outageCluster {
	prefix := "o" + uuid.NewString()[:8] + ":"
	apiRdb := clientWithin(t, apiAddr, timeout)
	apiStore := exeredis.New(apiRdb, exeredis.Options{Prefix: prefix})
	// The API process runs the lost-lease recovery, as its dispatcher
	// does when it runs no jobs.
	disp := exeredis.NewDispatcher(apiStore, exeredis.DispatcherOptions{Lease: lease, LostMessage: "server lost"})
	cfg := exe.Config{Store: apiStore, Executor: &plugintest.Executor{}, Dispatcher: disp}
	for _, d := range cancelWait {
		cfg.CancelWait = d
	}
	eng, err := exe.NewEngine(cfg)
	require.NoError(t, err)
	engines := []*exe.Engine{eng}
	x := newGatedExecutor()
	for i := 0; i < 2; i++ {
		rdb := clientWithin(t, workerAddr, timeout)
		s := exeredis.New(rdb, exeredis.Options{Prefix: prefix})
		w, err := exe.NewEngine(exe.Config{Store: s, Executor: x, Dispatcher: exeredis.NewDispatcher(s,
			exeredis.DispatcherOptions{RunJobs: true, Lease: lease, Concurrency: 8, Grace: time.Second})})
		require.NoError(t, err)
		engines = append(engines, w)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, e := range engines {
			wg.Add(1)
			go func() { defer wg.Done(); _ = e.Shutdown(context.Background()) }()
		}
		wg.Wait()
	})
	return &outageCluster{engine: eng, disp: disp, store: apiStore, x: x, prefix: prefix}
}

// startJobs submits n jobs on hosts a and b and waits until each has
// stored its "started" events.
func (c *outageCluster) startJobs(t *testing.T, n int, tag string) map[string]string {
	ctx := context.Background()
	jobs := map[string]string{} // jid: command
	for i := 0; i < n; i++ {
		cmd := fmt.Sprintf("%s-%d", tag, i)
		jid, err := c.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"}, Execute: exe.ExecuteArgs{Cmd: cmd}})
		require.NoError(t, err)
		jobs[jid] = cmd
	}
	for jid := range jobs {
		require.Eventually(t, func() bool {
			j, err := c.store.Get(ctx, jid, true)
			return err == nil && len(j.ReturnData["a"]) > 0 && len(j.ReturnData["b"]) > 0
		}, 20*time.Second, 10*time.Millisecond, "job %s starts", jid)
	}
	return jobs
}

// checkDone asserts that every job ended Done with its output, its
// events stored once each, having run once.
func (c *outageCluster) checkDone(t *testing.T, jobs map[string]string) {
	ctx := context.Background()
	for jid, cmd := range jobs {
		fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		final, err := c.engine.Follow(fctx, jid, func(exe.Event) error { return nil })
		cancel()
		require.NoError(t, err)
		assert.Equal(t, exe.JobDone, final.State, "%s: %s", jid, final.Error)
		j, err := c.store.Get(ctx, jid, true)
		require.NoError(t, err)
		for _, h := range []string{"a", "b"} {
			evs := j.ReturnData[h]
			if assert.Len(t, evs, 2, "%s %s: each event stored once", jid, h) {
				assert.Equal(t, "started", evs[0].Name)
				if assert.NotNil(t, evs[1].Exec) {
					assert.Equal(t, cmd, evs[1].Exec.Stdout, "the output is kept")
				}
			}
		}
		assert.Equal(t, 1, c.x.runsOf(cmd), "%s ran once", cmd)
	}
}

// TestRedisOutageLosesNothing: Redis does not answer for 3s, then for 5s,
// while jobs run; some end during the outage, some after it. Every job
// ends Done with all its output, none runs twice, none is failed as
// lost. Two kinds of outage: Redis paused (SIGSTOP: what clients send
// waits in the kernel and runs when it continues) and the network cut
// (nothing sent during the outage ever arrives). The lease, 30s, is long
// enough for the workers to ride out these outages without stopping
// their jobs (DispatcherOptions.FenceMargin: about Lease - FenceMargin -
// Lease/3 - Lease/10, 7s).
func TestRedisOutageLosesNothing(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{AppendOnly: true})
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	for _, kind := range []struct {
		name       string
		addr       string
		start, end func()
		outages    []time.Duration
	}{
		{"pause", srv.Addr, func() { srv.Pause(t) }, func() { srv.Resume(t) }, []time.Duration{3 * time.Second, 5 * time.Second}},
		{"cut", proxy.Addr, proxy.Blackhole, proxy.Restore, []time.Duration{5 * time.Second}},
	} {
		c := newOutageCluster(t, kind.addr, 30*time.Second)
		for _, outage := range kind.outages {
			t.Run(kind.name+outage.String(), func(t *testing.T) {
				endDuring := c.startJobs(t, 5, kind.name+"during"+outage.String())
				kind.start()
				// The commands end while Redis does not answer: their
				// results and outcomes must wait in the workers.
				c.x.open()
				time.Sleep(outage) // the outage's length; nothing to wait for
				kind.end()
				c.checkDone(t, endDuring)

				endAfter := c.startJobs(t, 5, kind.name+"after"+outage.String())
				kind.start()
				time.Sleep(outage)
				kind.end()
				c.x.open()
				c.checkDone(t, endAfter)
			})
		}
	}
}

// TestOutageLongerThanTheLease: Redis stops answering for one and a half
// leases, and the workers' network stays cut for a third of a lease
// after it is back, while the API process's recovery reaches Redis at
// once. The workers cannot tell the outage from a partition of their
// own: each stops its jobs before their leases may lapse. Every lease
// has lapsed by Redis's clock, but the recovery lost touch with Redis
// too, so it waits a lease before it fails any: the workers are back in
// time, take their leases again and store how their jobs ended, stopped
// "its worker lost its lease: cut off from Redis"; none is failed "server
// lost", none runs twice.
func TestOutageLongerThanTheLease(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{AppendOnly: true})
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	lease := 3 * time.Second
	c := newOutageClusterOn(t, srv.Addr, proxy.Addr, lease, 200*time.Millisecond)
	jobs := c.startJobs(t, 5, "long")
	srv.Pause(t)
	proxy.Blackhole()
	time.Sleep(lease * 3 / 2) // the outage's length
	srv.Resume(t)
	time.Sleep(lease / 3) // the workers' longer cut
	proxy.Restore()
	ctx := context.Background()
	for jid, cmd := range jobs {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		final, err := c.engine.Follow(fctx, jid, func(exe.Event) error { return nil })
		cancel()
		require.NoError(t, err)
		assert.Equal(t, exe.JobFailure, final.State, jid)
		assert.Equal(t, exe.ErrLeaseLost.Error(), final.Error, "%s: ended by its worker, not failed as lost", jid)
		assert.Equal(t, 1, c.x.runsOf(cmd), "%s ran once", cmd)
	}
}

// TestCancelMissedByItsWorker: a running job's cancel is asked while its
// worker is cut off from Redis, so that the cancel's message never reaches
// it. Once the worker reaches Redis again, it finds the cancel at its next
// lease renewal and stops the job, which ends as a job whose worker heard
// its cancel does (same state, error and host events), not by the API's
// fallback after CancelWait (40s).
func TestCancelMissedByItsWorker(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	c := newOutageClusterOn(t, srv.Addr, proxy.Addr, 3*time.Second, 200*time.Millisecond)
	ctx := context.Background()
	var heard, missed string
	for jid, cmd := range c.startJobs(t, 2, "cancel") {
		if strings.HasSuffix(cmd, "-0") {
			heard = jid
		} else {
			missed = jid
		}
	}
	want, err := c.engine.Cancel(ctx, heard)
	require.NoError(t, err)

	proxy.Blackhole()
	require.NoError(t, c.disp.Cancel(ctx, missed), "a worker holds the job's lease")
	// The cancel's message was published while the worker's connections
	// passed nothing: it is lost. They are reset now, as a network coming
	// back resets them.
	proxy.Restore()
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	final, err := c.engine.Follow(fctx, missed, func(exe.Event) error { return nil })
	require.NoError(t, err, "the worker stops the job once it reaches Redis again")

	assert.Equal(t, exe.JobFailure, want.State)
	assert.Equal(t, want.State, final.State)
	assert.Equal(t, want.Error, final.Error)
	got, err := c.store.Get(ctx, missed, true)
	require.NoError(t, err)
	ref, err := c.store.Get(ctx, heard, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "b"} {
		require.Len(t, got.ReturnData[h], len(ref.ReturnData[h]), h)
		for i, ev := range got.ReturnData[h] {
			r := ref.ReturnData[h][i]
			assert.Equal(t, []any{r.Status, r.Name, r.Msg, r.Exec}, []any{ev.Status, ev.Name, ev.Msg, ev.Exec}, "%s event %d", h, i)
		}
	}
}

// TestCancelAfterItsWorkerIsGone: a worker starts a job whose hosts have
// reported nothing yet, and is cut off from Redis; its lease is gone
// before any recovery has failed the job (a recoverer fails nothing in
// its first lease). A cancel then ends the job at once, and its hosts end
// FAILED "may still run", as their commands may be running, not SKIPPED
// "cancelled before start", which would say they never ran.
func TestCancelAfterItsWorkerIsGone(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	c := newOutageClusterOn(t, srv.Addr, proxy.Addr, 10*time.Second, 200*time.Millisecond)
	defer proxy.Restore() // lets the workers shut down without waiting out their timeouts
	ctx := context.Background()
	rdb := serverClient(t, srv.Addr)
	jid, err := c.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"}, Execute: exe.ExecuteArgs{Cmd: "quiet"}})
	require.NoError(t, err)
	lease := c.prefix + "lease:" + jid
	require.Eventually(t, func() bool {
		n, err := rdb.Exists(ctx, lease).Result()
		return err == nil && n == 1
	}, 20*time.Second, 10*time.Millisecond, "a worker starts the job")
	proxy.Blackhole()
	// The lease lapses (as it would a lease after the worker's last
	// renewal), and the worker, cut off, cannot take it again.
	require.NoError(t, rdb.Del(ctx, lease).Err())

	require.ErrorIs(t, c.disp.Cancel(ctx, jid), exe.ErrWorkerGone)
	job, err := c.engine.Cancel(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, exe.ErrCancelled.Error(), job.Error)
	j, err := c.store.Get(ctx, jid, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "b"} {
		if assert.Len(t, j.ReturnData[h], 1, h) {
			ev := j.ReturnData[h][0]
			assert.Equal(t, exe.HostFailed, ev.Status, "%s: %+v", h, ev)
			assert.Contains(t, ev.Msg, "may still run", h)
		}
	}
}

// TestCancelGivenUpKeepsLocksUntilTheLeaseLapses: a worker runs a deploy
// (a mutex job) and is cut off from Redis. A cancel waits CancelWait for
// it, then ends the job itself, its hosts FAILED "may still run": the
// worker may indeed still run the command, until it stops the job itself
// before its lease lapses. So the hosts stay locked until then (a deploy
// on them is refused, saying for how long), and are free again, with
// nobody's action, once the command has been stopped.
func TestCancelGivenUpKeepsLocksUntilTheLeaseLapses(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	const lease = 3 * time.Second
	c := newOutageClusterOn(t, srv.Addr, proxy.Addr, lease, 200*time.Millisecond, 300*time.Millisecond)
	defer proxy.Restore() // lets the workers shut down without waiting out their timeouts
	ctx := context.Background()
	deploy := func(role string, hosts ...string) (string, error) {
		return c.engine.Submit(ctx, exe.Request{Operate: exe.OpDeploy, Targets: hosts, Deploy: exe.DeployArgs{Role: role}})
	}
	jid, err := deploy("quiet-first", "a", "b")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.x.runsOf("quiet-first") == 1 }, 20*time.Second, 10*time.Millisecond, "a worker runs the deploy")
	proxy.Blackhole()

	job, err := c.engine.Cancel(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	j, err := c.store.Get(ctx, jid, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "b"} {
		if assert.Len(t, j.ReturnData[h], 1, h) {
			assert.Contains(t, j.ReturnData[h][0].Msg, "may still run", h)
		}
	}
	_, err = deploy("quiet-second", "b")
	var conflict *exe.ConflictError
	require.ErrorAs(t, err, &conflict, "the cut-off worker may still run the first deploy on b")
	assert.Equal(t, jid, conflict.JID)
	assert.True(t, conflict.Held > 0 && conflict.Held <= lease, "held for the rest of the lease, not %s", conflict.Held)
	assert.Contains(t, err.Error(), "cancelled without its worker confirming the stop")

	var second string
	require.Eventually(t, func() bool {
		second, err = deploy("quiet-second", "b")
		return err == nil
	}, 3*lease, 20*time.Millisecond, "the lock lapses with the lease: %v", err)
	assert.Equal(t, 1, c.x.stoppedRuns("quiet-first"), "b was free only once the worker had stopped the first deploy")
	_, err = deploy("quiet-third", "a")
	assert.NoError(t, err, "a lapsed with b")
	assert.NotEmpty(t, second)
}

// TestCancelOfItsOwnJobAfterItsLeaseLapsed: an API process that runs its
// jobs itself (RunJobs, one process on Redis) runs a job whose lease has
// lapsed (a Redis outage stopped its renewals; the process takes the lease
// again at its next one). Its worker is not gone: the cancel stops the
// command here and the Runner reports its hosts, rather than
// exe.ErrWorkerGone, on which the Engine would end the job at once with
// hosts FAILED "may still run" by the very process that stops them.
func TestCancelOfItsOwnJobAfterItsLeaseLapsed(t *testing.T) {
	srv := redistest.Start(t)
	prefix := "o" + uuid.NewString()[:8] + ":"
	s := exeredis.New(serverClient(t, srv.Addr), exeredis.Options{Prefix: prefix})
	x := newGatedExecutor()
	disp := exeredis.NewDispatcher(s, exeredis.DispatcherOptions{RunJobs: true, Lease: 10 * time.Second, LostMessage: exe.ErrServerLost.Error()})
	eng, err := exe.NewEngine(exe.Config{Store: s, Executor: x, Dispatcher: disp})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ctx := context.Background()
	rdb := serverClient(t, srv.Addr)
	jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"}, Execute: exe.ExecuteArgs{Cmd: "quiet"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return x.runsOf("quiet") == 1 }, 20*time.Second, 10*time.Millisecond, "the command starts")
	require.NoError(t, rdb.Del(ctx, prefix+"lease:"+jid).Err())

	require.NoError(t, disp.Cancel(ctx, jid), "this process's worker runs the job")
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	job, err := eng.Follow(fctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, exe.ErrCancelled.Error(), job.Error)
	job, err = s.Get(ctx, jid, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "b"} {
		if assert.Len(t, job.ReturnData[h], 1, h) {
			want, ev := exe.NoResult(h, exe.ErrCancelled), job.ReturnData[h][0]
			assert.Equal(t, []any{want.Status, want.Msg}, []any{ev.Status, ev.Msg}, "%s: stopped here, reported by its Runner", h)
		}
	}
}

// TestRedisRestartWithAOFLosesNothing: Redis is killed and restarted with
// its AOF while jobs end; the connections break instead of hanging.
func TestRedisRestartWithAOFLosesNothing(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{AppendOnly: true})
	c := newOutageCluster(t, srv.Addr, 10*time.Second)
	jobs := c.startJobs(t, 5, "restart")
	srv.Stop()
	c.x.open()
	time.Sleep(3 * time.Second) // the outage's length
	srv.Restart(t)
	c.checkDone(t, jobs)
}

// TestAppendRetriedStoresEachEventOnce: events numbered by their writer
// are positions; a batch sent again (its first reply lost) stores only
// what the stream does not hold yet.
func TestAppendRetriedStoresEachEventOnce(t *testing.T) {
	srv := redistest.Start(t)
	s, _, _ := newStore(t, srv)
	ctx := context.Background()
	jid := runningJob(t, s)
	ev := func(seq int64) exe.Event {
		return exe.Event{Host: "a", Seq: seq, Status: exe.HostOK, Msg: fmt.Sprint(seq)}
	}
	require.NoError(t, s.Append(ctx, jid, ev(1), ev(2), ev(3)))
	require.NoError(t, s.Append(ctx, jid, ev(2), ev(3), ev(4), ev(5)), "a retry with more events")
	require.NoError(t, s.Append(ctx, jid, ev(4), ev(5)), "a retry of what is stored")
	j, err := s.Get(ctx, jid, true)
	require.NoError(t, err)
	var msgs []string
	for _, e := range j.ReturnData["a"] {
		msgs = append(msgs, e.Msg)
	}
	assert.Equal(t, []string{"1", "2", "3", "4", "5"}, msgs)
}

// TestRunnerRetriesAfterALostReply: the reply to the Runner's append is
// lost (the client does not retry by itself); the Runner sends it again,
// and every event is stored once. The job's events fill more than a
// write's batch, so they are appended while it runs.
func TestRunnerRetriesAfterALostReply(t *testing.T) {
	s, proxy := lossyStore(t)
	ctx := context.Background()
	job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b", "c"}, Execute: exe.ExecuteArgs{Cmd: "stream 400"}}}
	require.NoError(t, s.Create(ctx, job))
	// The append script is loaded, so the reply lost is that of the
	// append that stores the events.
	require.NoError(t, s.Append(ctx, runningJob(t, s), exe.Event{Host: "a"}))
	proxy.DropNextReply()
	r := &exe.Runner{Store: s, Executor: &plugintest.Executor{}}
	require.NoError(t, r.RunJob(ctx, job))
	require.Equal(t, 1, proxy.Dropped())
	j, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, j.State, j.Error)
	for _, h := range job.Targets {
		assert.Len(t, j.ReturnData[h], 400, "%s: its events stored once", h)
	}
}

// TestRecovererOfAnAPIProcess: with no worker alive, a job whose holder
// died is failed by the API process's Recoverer, with the message its
// holder left, and its lock released; a restarted Recoverer fails nothing
// during its first lease.
func TestRecovererOfAnAPIProcess(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	lease := 400 * time.Millisecond
	jid, err := c.engine.Submit(ctx, exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: "r"}})
	require.NoError(t, err)
	cut := c.ghost(exeredis.DispatcherOptions{Lease: lease, LostMessage: "server lost"})
	require.Eventually(t, func() bool {
		n, _ := c.rdb.Exists(ctx, c.prefix+"lease:"+jid).Result()
		return n == 1
	}, 10*time.Second, 5*time.Millisecond, "the ghost starts the job")
	cut()
	require.Eventually(t, func() bool {
		n, _ := c.rdb.Exists(ctx, c.prefix+"lease:"+jid).Result()
		return n == 0
	}, 10*time.Second, 5*time.Millisecond, "the lease lapses")

	// An API process starts (the cluster's own recovers with a lease of
	// 10s, longer than this test).
	started := time.Now()
	c.start(c.store, &plugintest.Executor{}, exeredis.DispatcherOptions{Lease: lease})
	job := c.wait(jid)
	assert.GreaterOrEqual(t, time.Since(started), lease, "nothing is failed during a recoverer's first lease")
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "server lost", job.Error)
	full, err := c.store.Get(ctx, jid, true)
	require.NoError(t, err)
	if assert.Len(t, full.ReturnData["a"], 1, "the host gets an event") {
		assert.Equal(t, exe.HostFailed, full.ReturnData["a"][0].Status)
		assert.Equal(t, "server lost: the remote command may still be running", full.ReturnData["a"][0].Msg)
	}
	_, err = c.engine.Submit(ctx, exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: "r"}})
	require.NoError(t, err, "the lost job's lock was released")
}

// TestHealthDegradedWithoutWorkers: the dispatcher is degraded until a
// worker is seen, fine while one runs, degraded again once none has been
// seen for WorkerTimeout.
func TestHealthDegradedWithoutWorkers(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	d := exeredis.NewDispatcher(c.store, exeredis.DispatcherOptions{WorkerTimeout: 600 * time.Millisecond})
	err := d.Health(ctx)
	assert.ErrorIs(t, err, exe.ErrDegraded)
	assert.Equal(t, "no worker has been seen yet: queued jobs wait until one starts", exe.PublicMessage(err))
	stop := c.worker(exeredis.DispatcherOptions{Lease: 600 * time.Millisecond})
	require.Eventually(t, func() bool { return d.Health(ctx) == nil }, 10*time.Second, 10*time.Millisecond)
	eng, err := exe.NewEngine(exe.Config{Store: c.store, Dispatcher: d, Executor: &plugintest.Executor{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	require.NoError(t, eng.Health(ctx))
	stop()
	require.Eventually(t, func() bool { return errors.Is(d.Health(ctx), exe.ErrDegraded) }, 10*time.Second, 10*time.Millisecond)
	err = eng.Health(ctx)
	assert.ErrorIs(t, err, exe.ErrDegraded)
	assert.NotErrorIs(t, err, exe.ErrUnavailable)
	assert.Contains(t, exe.PublicMessage(err), "dispatcher: no worker has been seen")
}

// chattyExecutor's execute emits n events of 10 KiB on host a, counting
// the emits that returned.
type chattyExecutor struct {
	plugintest.Executor
	n       int
	emitted atomic.Int64
}

func (x *chattyExecutor) Execute(ctx context.Context, hs []string, args exe.ExecuteArgs, emit exe.Emit) error {
	out := strings.Repeat("x", 10<<10)
	for i := 0; i < x.n; i++ {
		emit(exe.Event{Host: "a", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: out}})
		x.emitted.Add(1)
	}
	return nil
}

// TestRunnerBoundsUnstoredEvents: while Redis does not answer, a job's
// events wait in memory up to MaxUnstoredBytes; then its executor waits
// too. All of them are stored once Redis is back.
func TestRunnerBoundsUnstoredEvents(t *testing.T) {
	srv := redistest.Start(t)
	s, _, _ := newStore(t, srv)
	ctx := context.Background()
	job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "talk"}}}
	require.NoError(t, s.Create(ctx, job))
	x := &chattyExecutor{n: 100}
	r := &exe.Runner{Store: s, Executor: x, MaxUnstoredBytes: 64 << 10}
	srv.Pause(t)
	done := make(chan error, 1)
	go func() { done <- r.RunJob(ctx, job) }()
	// 64 KiB hold six events of a little over 10 KiB.
	require.Eventually(t, func() bool { return x.emitted.Load() == 6 }, 10*time.Second, time.Millisecond)
	time.Sleep(time.Second) // the rest of the outage
	assert.EqualValues(t, 6, x.emitted.Load(), "the executor waits while the bound is reached")
	srv.Resume(t)
	require.NoError(t, <-done)
	j, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, j.State, j.Error)
	assert.Len(t, j.ReturnData["a"], 100)
}
