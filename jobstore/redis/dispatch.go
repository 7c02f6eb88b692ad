package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"
)

// group is the consumer group every worker reads the queue through.
const group = "workers"

// DefaultLease is WorkerOptions.Lease when it is zero.
const DefaultLease = 10 * time.Second

// Dispatcher is the API side of Redis dispatch: it queues jobs on the
// queue stream and broadcasts cancels. It runs nothing itself.
type Dispatcher struct {
	// WorkerTimeout is how long no worker may have been seen before Health
	// reports the dispatch degraded (queued jobs wait until a worker
	// starts); zero: 10s, the default lease. Workers are seen every
	// quarter lease, so the lease time is a good value. Set it before
	// use.
	WorkerTimeout time.Duration

	rdb goredis.UniversalClient
	s   *Store
}

var _ exe.Dispatcher = (*Dispatcher)(nil)

// NewDispatcher returns a Dispatcher for jobs kept in s.
func NewDispatcher(rdb goredis.UniversalClient, s *Store) *Dispatcher {
	return &Dispatcher{rdb: rdb, s: s}
}

// Dispatch implements exe.Dispatcher: the job waits in the queue until a
// worker takes it (jobs queued while no worker runs are run when one
// starts).
func (d *Dispatcher) Dispatch(ctx context.Context, jid string) error {
	err := d.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: d.s.key("queue"), Values: []any{"jid", jid}}).Err()
	return unavailable(ctx, err)
}

// CreateAndDispatch implements exe.CreateDispatcher: the job is stored and
// queued by one script.
func (d *Dispatcher) CreateAndDispatch(ctx context.Context, job *exe.Job) error {
	return d.s.create(ctx, job, d.s.key("queue"))
}

// Cancel implements exe.Dispatcher: whichever worker runs the job stops
// it. A job no worker has started, or whose worker's lease has lapsed, is
// exe.ErrNotRunning: the API ends it. A worker that starts it meanwhile
// stops at its first event, or when its lease is found gone once the job
// has ended.
func (d *Dispatcher) Cancel(ctx context.Context, jid string) error {
	if err := d.rdb.Publish(ctx, d.s.key("cancel"), jid).Err(); err != nil {
		return unavailable(ctx, err)
	}
	pipe := d.rdb.Pipeline()
	worker := pipe.HExists(ctx, d.s.jobKey(jid), "worker")
	leased := pipe.Exists(ctx, d.s.leaseKey(jid))
	if _, err := pipe.Exec(ctx); err != nil {
		return unavailable(ctx, err)
	}
	if !worker.Val() || leased.Val() == 0 {
		return exe.ErrNotRunning
	}
	return nil
}

// Health implements exe.HealthChecker: exe.ErrUnavailable when Redis does
// not answer, exe.ErrDegraded when no worker has been seen for
// WorkerTimeout.
func (d *Dispatcher) Health(ctx context.Context) error {
	ago, err := lastSeenScript.Run(ctx, d.rdb, []string{d.s.key("workers")}).Int64()
	if err != nil {
		return unavailable(ctx, err)
	}
	timeout := d.WorkerTimeout
	if timeout <= 0 {
		timeout = DefaultLease
	}
	switch {
	case ago < 0:
		return exe.Errorf(exe.ErrDegraded, "no worker has been seen yet: queued jobs wait until one starts")
	case time.Duration(ago)*time.Millisecond > timeout:
		return exe.Errorf(exe.ErrDegraded, "no worker has been seen for %s: queued jobs wait until one starts",
			(time.Duration(ago) * time.Millisecond).Round(time.Second))
	}
	return nil
}

// JobRunner runs stored jobs; *exe.Runner is one. A runner that also has
// RunJob(ctx, *exe.Job) is given the job the worker read when it took it.
type JobRunner interface {
	Run(ctx context.Context, jid string) error
}

type jobRunner interface {
	RunJob(ctx context.Context, job *exe.Job) error
}

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// Name identifies the worker in the group and in leases; default
	// host-pid-random.
	Name string
	// Concurrency is how many jobs it runs at once; default 4.
	Concurrency int
	// Lease is how long a job stays leased without a heartbeat; a worker
	// renews it every Lease/3, and after a failed renewal every Lease/10
	// until Redis answers. A job whose lease lapses fails with LostMessage
	// within about Lease plus RecoverEvery (see Recoverer for when it
	// waits longer). Default DefaultLease.
	Lease time.Duration
	// RecoverEvery is how often the worker looks for lapsed leases of
	// other workers, and notes itself as seen; default (and at most)
	// Lease/4.
	RecoverEvery time.Duration
	// LostMessage is the error a job of this worker's gets when its lease
	// lapses (the worker died); default "worker lost" (exe.ErrWorkerLost).
	LostMessage string
	// ClaimIdle is how long a queued message may stay read-but-not-started
	// (its reader died) before another worker claims it; default 30s.
	ClaimIdle time.Duration
	// Grace is how long Run waits on shutdown for running jobs before it
	// cancels them (they fail with "server shutdown"); default 30s.
	Grace  time.Duration
	Logger hclog.Logger
}

// Worker takes jobs from the queue and runs them, at most once each.
type Worker struct {
	rdb    goredis.UniversalClient
	s      *Store
	runner JobRunner
	opts   WorkerOptions
	log    hclog.Logger

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	wg      sync.WaitGroup

	hurryOnce sync.Once
	hurry     chan struct{} // closed by Hurry
	// life ends when Run returns: leases are renewed until a job's run
	// returns, or until then.
	life    context.Context
	endLife context.CancelFunc
}

// NewWorker returns a worker that runs jobs of s with runner.
func NewWorker(rdb goredis.UniversalClient, s *Store, runner JobRunner, opts WorkerOptions) *Worker {
	if opts.Name == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Name = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.RecoverEvery <= 0 || opts.RecoverEvery > opts.Lease/4 {
		opts.RecoverEvery = opts.Lease / 4
	}
	if opts.LostMessage == "" {
		opts.LostMessage = exe.ErrWorkerLost.Error()
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = 30 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	life, endLife := context.WithCancel(context.Background())
	return &Worker{rdb: rdb, s: s, runner: runner, opts: opts, log: opts.Logger, running: map[string]context.CancelCauseFunc{},
		hurry: make(chan struct{}), life: life, endLife: endLife}
}

// Hurry ends the grace period of a Run that is shutting down (or will):
// its running jobs are cancelled at once.
func (w *Worker) Hurry() { w.hurryOnce.Do(func() { close(w.hurry) }) }

// Name is the worker's name in the consumer group.
func (w *Worker) Name() string { return w.opts.Name }

// Run takes and runs jobs until ctx ends; then it stops taking jobs, gives
// the running ones Grace to finish, cancels the rest (they fail with
// "server shutdown") and returns once they have ended. Redis outages are
// retried with backoff.
func (w *Worker) Run(ctx context.Context) error {
	defer w.endLife()
	jobCtx, stopJobs := context.WithCancelCause(context.Background())
	defer stopJobs(nil)
	var loops sync.WaitGroup
	rec := NewRecoverer(w.rdb, w.s, RecovererOptions{Lease: w.opts.Lease, Every: w.opts.RecoverEvery, Worker: w.opts.Name, Logger: w.log})
	for _, loop := range []func(context.Context, context.Context){w.readLoop, w.claimLoop, w.cancelLoop,
		func(ctx, _ context.Context) { rec.Run(ctx) }} {
		loops.Add(1)
		go func() { defer loops.Done(); loop(ctx, jobCtx) }()
	}
	<-ctx.Done()
	loops.Wait()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-w.hurry:
	case <-time.After(w.opts.Grace):
	}
	select {
	case <-done:
	default:
		w.log.Warn("grace period over: cancelling running jobs")
		stopJobs(exe.ErrShutdown)
		select {
		case <-done:
		case <-time.After(10 * time.Second): // as dispatch/local's afterGrace
			// An executor that ignores cancellation: fail its jobs here
			// rather than leave them Running behind a dead worker.
			w.mu.Lock()
			for jid := range w.running {
				if err := w.s.Finish(context.Background(), jid, exe.JobFailure, exe.ErrShutdown.Error()); err == nil {
					w.log.Warn("job did not stop after cancel; failed it", "jid", jid)
				}
			}
			w.mu.Unlock()
		}
	}
	// No longer a worker that takes jobs: health checks should know.
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = w.rdb.ZRem(rctx, w.s.key("workers"), w.opts.Name).Err()
	return nil
}

// backoff sleeps after a failed Redis call, longer each time, up to 5s.
func backoff(ctx context.Context, failures int) {
	d := 100 * time.Millisecond << min(failures, 6)
	d = min(d, 5*time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (w *Worker) ensureGroup(ctx context.Context) error {
	err := w.rdb.XGroupCreateMkStream(ctx, w.s.key("queue"), group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

// readLoop takes jobs whenever slots are free.
func (w *Worker) readLoop(ctx, jobCtx context.Context) {
	slots := make(chan struct{}, w.opts.Concurrency)
	failures := 0
	groupReady := false
	for ctx.Err() == nil {
		if !groupReady {
			if err := w.ensureGroup(ctx); err != nil {
				w.log.Warn("redis unavailable; retrying", "error", err)
				failures++
				backoff(ctx, failures)
				continue
			}
			groupReady = true
		}
		// Wait for one free slot, then take every other free one: a read
		// asks for as many jobs as can start now.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
	more:
		for free < w.opts.Concurrency {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break more
			}
		}
		// Jobs that wait are read and started in one step; only when
		// there are none does the worker block on the queue, and then
		// starts what it reads one by one (handle).
		taken, err := takeScript.Run(ctx, w.rdb, []string{w.s.key("queue"), w.s.key("started"), w.s.key("taken", w.opts.Name)},
			group, w.opts.Name, free, w.opts.Lease.Milliseconds(), w.s.opts.Prefix, w.s.token(), w.opts.LostMessage).Slice()
		if err == nil && len(taken) > 0 {
			failures = 0
			for ; free > len(taken)/2; free-- {
				<-slots
			}
			for i := 0; i+1 < len(taken); i += 2 {
				jid, _ := taken[i].(string)
				fields, _ := taken[i+1].([]any)
				w.wg.Add(1)
				go func() {
					defer func() { <-slots; w.wg.Done() }()
					w.run(jobCtx, jid, fields)
				}()
			}
			continue
		}
		res, err := w.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.opts.Name,
			Streams: []string{w.s.key("queue"), ">"}, Count: int64(free), Block: 2 * time.Second}).Result()
		if err != nil {
			for ; free > 0; free-- {
				<-slots
			}
			if errors.Is(err, goredis.Nil) || ctx.Err() != nil {
				continue
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				groupReady = false // Redis lost its data: make the group again
				continue
			}
			w.log.Warn("redis unavailable; retrying", "error", err)
			failures++
			backoff(ctx, failures)
			continue
		}
		failures = 0
		for ; free > len(res[0].Messages); free-- {
			<-slots // slots not used by this read
		}
		for _, m := range res[0].Messages {
			w.wg.Add(1)
			go func() {
				defer func() { <-slots; w.wg.Done() }()
				w.handle(ctx, jobCtx, m)
			}()
		}
	}
}

// claimLoop takes over messages that a dead worker read but never started.
func (w *Worker) claimLoop(ctx, jobCtx context.Context) {
	every(ctx, w.opts.ClaimIdle/2, func() bool {
		start := "0-0"
		for i := 0; i < 100; i++ { // bounded: 100 pages of 100 per tick
			msgs, next, err := w.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{Stream: w.s.key("queue"), Group: group,
				Consumer: w.opts.Name, MinIdle: w.opts.ClaimIdle, Start: start, Count: 100}).Result()
			if err != nil {
				break
			}
			for _, m := range msgs {
				w.log.Info("claimed a job its reader never started", "jid", m.Values["jid"])
				w.wg.Add(1)
				go func() { defer w.wg.Done(); w.handle(ctx, jobCtx, m) }()
			}
			if next == "0-0" || next == "" {
				break
			}
			start = next
		}
		return true
	})
}

// cancelLoop stops the jobs this worker runs when the API cancels them.
func (w *Worker) cancelLoop(ctx, _ context.Context) {
	sub := w.rdb.Subscribe(ctx, w.s.key("cancel"))
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			w.mu.Lock()
			cancel := w.running[m.Payload]
			w.mu.Unlock()
			if cancel != nil {
				cancel(exe.ErrCancelled)
			}
		}
	}
}

// handle starts a queued job (if nobody did) and runs it under a lease.
func (w *Worker) handle(ctx, jobCtx context.Context, m goredis.XMessage) {
	jid, _ := m.Values["jid"].(string)
	// Started and acknowledged in one step (or found not to need running
	// and acknowledged): a job is never delivered again after this, so it
	// runs at most once.
	res, err := startScript.Run(ctx, w.rdb, []string{w.s.jobKey(jid), w.s.leaseKey(jid), w.s.key("started"), w.s.key("queue")},
		w.opts.Name, w.opts.Lease.Milliseconds(), jid, group, m.ID, w.opts.LostMessage).Result()
	if err != nil {
		// Left pending: another worker claims it after ClaimIdle.
		w.log.Warn("could not start a job; it stays queued", "jid", jid, "error", err)
		return
	}
	fields, started := res.([]any)
	if !started {
		w.log.Debug("queued job not run", "jid", jid, "reason", res)
		return
	}
	w.run(jobCtx, jid, fields)
}

// run runs a job the worker started, given its hash's fields and values.
func (w *Worker) run(jobCtx context.Context, jid string, fields []any) {
	hash := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		hash[k] = v
	}
	runCtx, cancel := context.WithCancelCause(jobCtx)
	defer cancel(nil)
	w.mu.Lock()
	w.running[jid] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, jid)
		w.mu.Unlock()
	}()
	// The lease is renewed until the run returns, not until its context
	// ends: a cancelled job is still this worker's while its executor
	// reports the hosts the cancel interrupted and the Runner stores
	// them.
	hbCtx, hbStop := context.WithCancel(w.life)
	defer hbStop()
	hbDone := make(chan struct{})
	go w.heartbeat(hbCtx, jid, cancel, hbDone)
	w.log.Debug("running job", "jid", jid)
	run := func() error { return w.runner.Run(runCtx, jid) }
	if r, ok := w.runner.(jobRunner); ok {
		if job, err := decodeJob(jid, hash); err == nil {
			job.JID = jid
			run = func() error { return r.RunJob(runCtx, job) }
		}
	}
	if err := run(); err != nil {
		w.log.Error("job run", "jid", jid, "error", err)
	}
	hbStop()
	<-hbDone
}

// heartbeat renews the job's lease until the run ends. While Redis does
// not answer it tries again every Lease/10, and takes the lease again if
// it lapsed meanwhile while the job still runs as this worker's. A lease
// found taken, or a job found ended, means the job was cancelled or
// failed as lost: stop running it.
func (w *Worker) heartbeat(ctx context.Context, jid string, cancel context.CancelCauseFunc, done chan<- struct{}) {
	defer close(done)
	every, retry := w.opts.Lease/3, w.opts.Lease/10
	t := time.NewTimer(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := renewScript.Run(ctx, w.rdb, []string{w.s.leaseKey(jid), w.s.jobKey(jid)}, w.opts.Name, w.opts.Lease.Milliseconds()).Int()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			if !failing {
				w.log.Warn("could not renew the lease of a running job; retrying", "jid", jid, "error", err)
			}
			failing = true
			t.Reset(retry)
			continue
		case held == 0:
			w.log.Warn("the job is no longer this worker's (cancelled, or failed as lost); stopping it", "jid", jid)
			cancel(exe.ErrWorkerLost)
			return
		case held == 2:
			w.log.Warn("took the lease of a running job again after it lapsed", "jid", jid)
		case failing:
			w.log.Info("renewed the lease of a running job again", "jid", jid)
		}
		failing = false
		t.Reset(every)
	}
}

// every calls fn every d until ctx ends or fn returns false.
func every(ctx context.Context, d time.Duration, fn func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}
