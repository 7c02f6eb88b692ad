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
	"github.com/0ops/exed/internal/running"
	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"
)

// group is the consumer group every worker reads the queue through.
const group = "workers"

// DefaultLease is DispatcherOptions.Lease when it is zero.
const DefaultLease = 30 * time.Second

// Dispatcher is the Redis exe.Dispatcher: it queues jobs on the queue
// stream, where any process's worker takes them, and broadcasts cancels.
// What it runs beside that depends on DispatcherOptions.RunJobs:
//
//   - RunJobs: a worker that takes jobs from the queue and runs them with
//     the Engine's runner, at most once each, under a lease it renews
//     while they run, and stops a job itself before its lease may lapse
//     when it cannot renew it (DispatcherOptions.FenceMargin); the worker
//     also runs the lost-lease recovery. This is `exed worker`, and an
//     API server that runs its jobs itself on a Redis store.
//   - otherwise: only the lost-lease recovery (see recoverer), so that the jobs of a worker that died fail
//     even when no other worker is alive. Jobs wait in the queue until a
//     worker takes them. This is an API server with separate workers.
//
// Start (called by exe.NewEngine) starts them; Shutdown stops them.
//
// A Dispatcher works on the jobs of one Store, on that store's client and
// key prefix: it is an exe.BoundDispatcher, so exe.NewEngine takes its
// store when Config.Store is nil and refuses any other.
type Dispatcher struct {
	rdb  goredis.UniversalClient
	s    *Store
	opts DispatcherOptions
	log  hclog.Logger

	bad error // what NewDispatcher refused, for Start to return

	mu      sync.Mutex
	started bool
	w       *worker                   // with RunJobs, once started
	stop    func(ctx context.Context) // ends what Start started
	stopped chan struct{}             // closed when stop has returned
}

var (
	_ exe.BoundDispatcher   = (*Dispatcher)(nil)
	_ exe.StoringDispatcher = (*Dispatcher)(nil)
)

// DispatcherOptions configure a Dispatcher. Zero fields take their
// defaults; a negative Concurrency or duration is refused by Start (so by
// exe.NewEngine).
type DispatcherOptions struct {
	// RunJobs makes this process take jobs from the queue and run them;
	// without it, other processes' workers run them.
	RunJobs bool
	// Name identifies this process's worker in the consumer group and in
	// leases; default host-pid-random.
	Name string
	// Concurrency is how many jobs the worker runs at once; default
	// exe.DefaultJobsAtOnce.
	Concurrency int
	// Lease is how long a job stays leased without a heartbeat; a worker
	// renews it every Lease/3, and after a failed renewal every Lease/10
	// until Redis answers. A job whose lease lapses fails with LostMessage
	// within about Lease plus RecoverEvery (see recover.go for when it
	// waits longer). It is also the lease of the workers whose jobs the
	// recovery fails. A worker that cannot renew a lease stops the job
	// before it lapses (FenceMargin), so Lease also bounds the Redis
	// outage a running job outlives: about Lease - FenceMargin - Lease/3 -
	// Lease/10, 7s with the defaults; a longer one stops the jobs
	// running then (raise Lease to ride out a Redis failover). Default
	// DefaultLease.
	Lease time.Duration
	// FenceMargin is how long before a job's lease may lapse a worker
	// that could not renew it stops the job itself. The worker knows the
	// lease lasts at least until the send time of the last renewal (or
	// take) Redis confirmed, plus Lease, on its own clock; at that point
	// minus FenceMargin it cancels the job's run with cause
	// exe.ErrLeaseLost ("its worker lost its lease: cut off from Redis"),
	// whether Redis is down for everyone or the worker alone is cut off:
	// it cannot tell which. Its executor stops the commands and reports
	// the hosts it stopped, and the Runner stores them and the end if
	// Redis answers again within 10s; else the recovery fails the job as
	// lost once the lease has lapsed in Redis, and only then releases its
	// hosts' locks. So no second mutex job starts on a host while the
	// command stays running there, provided the executor stops it within
	// FenceMargin: SIGHUP, then SIGTERM and SIGKILL kill_grace apart for
	// sshnative and ansible, about twice kill_grace plus round trips for a
	// command that ignores SIGHUP and SIGTERM (5s with their default
	// kill_grace of 2s, so a Lease of 15s or more). It assumes that
	// Redis keeps each lease until it lapses by Redis's clock: a clock
	// that does not jump forward, and no eviction of lease keys
	// (maxmemory-policy noeviction). A failover to a replica that lacks
	// the last renewal breaks the recovery's touch with Redis as well,
	// after which it waits a lease (see recover.go). Default Lease/3;
	// more than Lease/2 is refused by Start, as it would stop jobs whose
	// renewal is merely late.
	FenceMargin time.Duration
	// RecoverEvery is how often the recovery looks for lapsed leases, and
	// the worker notes itself as seen; default (and at most) Lease/4.
	RecoverEvery time.Duration
	// LostMessage is the error a job of this worker's gets when its lease
	// lapses (the process died), and that the recovery gives a lost job
	// whose holder left none; default "worker lost" (exe.ErrWorkerLost).
	// An API server that runs its jobs itself says "server lost"
	// (exe.ErrServerLost).
	LostMessage string
	// ClaimIdle is how long a queued message may stay read-but-not-started
	// (its reader died) before another worker claims it; default 30s.
	ClaimIdle time.Duration
	// Grace is how long Shutdown waits for running jobs before it
	// cancels them (they fail with "server shutdown"); default 30s.
	Grace time.Duration
	// WorkerTimeout is how long no worker may have been seen before
	// Health reports the dispatch degraded (queued jobs wait until a
	// worker starts), when this process runs no jobs; default Lease.
	// Workers are seen every RecoverEvery.
	WorkerTimeout time.Duration
	Logger        hclog.Logger
}

// NewDispatcher returns a Dispatcher for the jobs kept in s, on s's
// client and key prefix, to give to exe.NewEngine (with s, or no Store).
// Zero options take their defaults; negative ones, and a nil s, are
// refused by Start (so by NewEngine).
func NewDispatcher(s *Store, opts DispatcherOptions) *Dispatcher {
	d := &Dispatcher{s: s, stopped: make(chan struct{})}
	d.bad = checkDispatcherOptions(s, opts)
	if s != nil {
		d.rdb = s.rdb
	}
	if opts.Name == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Name = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = exe.DefaultJobsAtOnce
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.FenceMargin <= 0 {
		opts.FenceMargin = opts.Lease / 3
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
	if opts.WorkerTimeout <= 0 {
		opts.WorkerTimeout = opts.Lease
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	d.opts, d.log = opts, opts.Logger
	return d
}

// checkDispatcherOptions is NewDispatcher's refusal, which Start returns.
func checkDispatcherOptions(s *Store, opts DispatcherOptions) error {
	if s == nil {
		return errors.New("redis dispatcher: NewDispatcher needs the Store whose jobs it runs, not nil")
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Lease", opts.Lease}, {"FenceMargin", opts.FenceMargin}, {"RecoverEvery", opts.RecoverEvery},
		{"ClaimIdle", opts.ClaimIdle}, {"Grace", opts.Grace}, {"WorkerTimeout", opts.WorkerTimeout}} {
		if f.v < 0 {
			return fmt.Errorf("redis dispatcher: DispatcherOptions.%s is negative (zero means the default)", f.name)
		}
	}
	lease := opts.Lease
	if lease == 0 {
		lease = DefaultLease
	}
	if opts.FenceMargin > lease/2 {
		return fmt.Errorf("redis dispatcher: DispatcherOptions.FenceMargin (%s) is more than half the Lease (%s): "+
			"a worker would stop its jobs whenever a renewal (every Lease/3) is a little late", opts.FenceMargin, lease)
	}
	if opts.Concurrency < 0 {
		return errors.New("redis dispatcher: DispatcherOptions.Concurrency is negative (zero means the default)")
	}
	return nil
}

// JobStore implements exe.BoundDispatcher: the Store whose jobs it runs
// (nil when NewDispatcher was given none).
func (d *Dispatcher) JobStore() exe.JobStore {
	if d.s == nil {
		return nil
	}
	return d.s
}

// Name is the name of this process's worker in the consumer group.
func (d *Dispatcher) Name() string { return d.opts.Name }

// Start implements exe.Dispatcher: with RunJobs it starts the worker,
// which runs jobs with runner; otherwise the lost-lease recovery.
func (d *Dispatcher) Start(runner exe.JobRunner) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bad != nil {
		return d.bad
	}
	if d.started {
		return errors.New("redis dispatcher: already started: a dispatcher serves one engine")
	}
	d.started = true
	if d.opts.RunJobs {
		w := newWorker(d.rdb, d.s, runner, d.opts)
		w.start()
		d.w, d.stop = w, w.stop
		return nil
	}
	rec := newRecoverer(d.rdb, d.s, d.opts, "", runner)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.run(ctx) }()
	d.stop = func(context.Context) { cancel(); <-done }
	return nil
}

// Shutdown implements exe.Dispatcher. The worker stops taking jobs; the
// jobs it runs get Grace (or until ctx is done, if sooner), then fail
// "server shutdown". Jobs still queued stay queued for another worker,
// or for this process's next start.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	stop := d.stop
	d.stop = nil
	d.mu.Unlock()
	if stop == nil {
		select {
		case <-d.stopped: // another call stopped it: wait with it
		case <-ctx.Done():
		}
		return nil
	}
	stop(ctx)
	close(d.stopped)
	return nil
}

// Dispatch implements exe.Dispatcher: the job waits in the queue until a
// worker takes it (jobs queued while no worker runs are run when one
// starts). A job dispatched twice (a call retried after its reply was
// lost) still runs once: the worker that starts it from one message
// drops the other (startScript).
func (d *Dispatcher) Dispatch(ctx context.Context, jid string) error {
	err := d.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: d.s.key("queue"), Values: []any{"jid", jid}}).Err()
	return unavailable(ctx, err)
}

// CreateAndDispatch implements exe.StoringDispatcher: the job is stored and
// queued by one script.
func (d *Dispatcher) CreateAndDispatch(ctx context.Context, job *exe.Job) error {
	return d.s.create(ctx, job, d.s.key("queue"))
}

// Cancel implements exe.Dispatcher. It marks the job cancelled in Redis
// and tells the workers at once (cancelScript); then:
//   - a job under a worker's lease: nil. The worker stops it when the
//     message reaches it, or else at its next lease renewal (every
//     Lease/3) once it reaches Redis, so a worker cut off when the cancel
//     was asked still gets it;
//   - a job whose worker's lease lapsed: exe.ErrWorkerGone, for the API to
//     end it; but nil if this process's own worker runs it (its renewals
//     stopped by an outage), which stops it here;
//   - a queued job: exe.ErrNotRunning, for the API to end it. A worker
//     that takes it meanwhile does not run it, and ends it as the API
//     does, should the API have stopped first.
//
// A worker cut off from Redis has stopped the job itself before its lease
// could lapse (DispatcherOptions.FenceMargin); one whose job was ended
// meanwhile (by the API on exe.ErrWorkerGone, or by the recovery) stops
// what is left of it when it first stores an event (at most 10ms after
// the event), or when its lease is found gone once the job has ended;
// what it ran is not stored.
func (d *Dispatcher) Cancel(ctx context.Context, jid string) error {
	d.mu.Lock()
	w := d.w
	d.mu.Unlock()
	// Noted before the cancel is published: the message may reach this
	// process's worker, which stops the job and forgets it, before the
	// script returns.
	local := w != nil && w.jobs.Has(jid)
	held, err := cancelScript.Run(ctx, d.rdb, []string{d.s.jobKey(jid), d.s.leaseKey(jid)}, d.s.key("cancel"), jid).Int()
	if err != nil {
		return unavailable(ctx, err)
	}
	switch held {
	case 1:
		return nil
	case 2:
		if w != nil && (w.jobs.Cancel(jid, exe.ErrCancelled) || local) {
			return nil
		}
		return exe.ErrWorkerGone
	}
	return exe.ErrNotRunning
}

// Health implements exe.HealthChecker. A process that runs jobs itself
// needs no other worker: nil (the store's check asks Redis). Otherwise
// exe.ErrUnavailable when Redis does not answer, exe.ErrDegraded when no
// worker has been seen for WorkerTimeout.
func (d *Dispatcher) Health(ctx context.Context) error {
	if d.opts.RunJobs {
		return nil
	}
	ago, err := lastSeenScript.Run(ctx, d.rdb, []string{d.s.key("workers")}).Int64()
	if err != nil {
		return unavailable(ctx, err)
	}
	switch {
	case ago < 0:
		return exe.Errorf(exe.ErrDegraded, "no worker has been seen yet: queued jobs wait until one starts")
	case time.Duration(ago)*time.Millisecond > d.opts.WorkerTimeout:
		return exe.Errorf(exe.ErrDegraded, "no worker has been seen for %s: queued jobs wait until one starts",
			(time.Duration(ago) * time.Millisecond).Round(time.Second))
	}
	return nil
}

// worker takes jobs from the queue and runs them, at most once each.
type worker struct {
	rdb    goredis.UniversalClient
	s      *Store
	runner exe.JobRunner
	opts   DispatcherOptions
	log    hclog.Logger
	jobs   running.Jobs
	wg     sync.WaitGroup // the goroutines that start and run jobs
	// work is what the read loop starts, run by up to Concurrency
	// goroutines (spawned) that stay for the worker's life once started:
	// a job does not start a goroutine (and grow its stack) of its own.
	// Unbuffered: a send is taken by a goroutine that waits.
	work    chan func()
	spawned int // read loop only

	// loops stop the loops that take jobs; loopsDone ends when they
	// have.
	loops     context.CancelFunc
	loopsDone chan struct{}
	// life ends when stop returns: leases are renewed until a job's run
	// returns, or until then.
	life    context.Context
	endLife context.CancelFunc
}

func newWorker(rdb goredis.UniversalClient, s *Store, runner exe.JobRunner, opts DispatcherOptions) *worker {
	life, endLife := context.WithCancel(context.Background())
	return &worker{rdb: rdb, s: s, runner: runner, opts: opts, log: opts.Logger, life: life, endLife: endLife}
}

// start starts taking and running jobs. Redis outages are retried with
// backoff.
func (w *worker) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.loops, w.loopsDone = cancel, make(chan struct{})
	w.work = make(chan func())
	var loops sync.WaitGroup
	rec := newRecoverer(w.rdb, w.s, w.opts, w.opts.Name, w.runner)
	// A job taken before the worker listens for cancels would miss their
	// message, and stop only at its next lease renewal: the loops that
	// take jobs start once the subscription is confirmed.
	subscribed := make(chan struct{})
	listening := func(loop func(context.Context)) func(context.Context) {
		return func(ctx context.Context) {
			select {
			case <-subscribed:
				loop(ctx)
			case <-ctx.Done():
			}
		}
	}
	cancels := func(ctx context.Context) { w.cancelLoop(ctx, subscribed) }
	for _, loop := range []func(context.Context){listening(w.readLoop), listening(w.claimLoop), cancels, rec.run} {
		loops.Add(1)
		go func() { defer loops.Done(); loop(ctx) }()
	}
	go func() { loops.Wait(); close(w.work); close(w.loopsDone) }()
}

// stop stops taking jobs, gives the running ones Grace (or until ctx is
// done) to finish, cancels the rest (they fail with "server shutdown")
// and returns once they have ended.
func (w *worker) stop(ctx context.Context) {
	defer w.endLife()
	w.loops()
	<-w.loopsDone
	idle := make(chan struct{})
	go func() { w.wg.Wait(); close(idle) }()
	stuck := w.jobs.Drain(ctx, idle, w.opts.Grace, exe.ErrShutdown, func(jid string) {
		// An executor that ignores cancellation: fail its job here
		// rather than leave it Running behind a dead worker.
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.runner.Fail(fctx, jid, exe.ErrShutdown.Error()); err == nil {
			w.log.Warn("job did not stop after cancel; failed it", "jid", jid)
		}
	})
	if len(stuck) > 0 {
		w.log.Warn("grace period over: jobs did not stop", "jobs", len(stuck))
	}
	// No longer a worker that takes jobs: health checks should know.
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = w.rdb.ZRem(rctx, w.s.key("workers"), w.opts.Name).Err()
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

func (w *worker) ensureGroup(ctx context.Context) error {
	err := w.rdb.XGroupCreateMkStream(ctx, w.s.key("queue"), group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

// readLoop takes jobs whenever slots are free.
func (w *worker) readLoop(ctx context.Context) {
	slots := make(chan struct{}, w.opts.Concurrency)
	failures := 0
	groupReady := false
	// drained: the last blocking read found fewer jobs than it asked for,
	// so it left the queue empty. The next read blocks at once rather
	// than try a take first, which would most likely find nothing: when
	// jobs come one at a time, that saves a script call per job (it
	// returns at once when jobs came meanwhile). A read that fills every
	// free slot means jobs may be waiting: the worker takes again.
	drained := false
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
		// there are none (or none were left after the last read: drained)
		// does the worker block on the queue, and then starts what it
		// reads one by one (handle). The leases it takes last at least
		// Lease from the call's send time (sent).
		if !drained {
			sent := time.Now()
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
					w.hand(func() {
						defer func() { <-slots; w.wg.Done() }()
						w.run(jid, fields, sent)
					})
				}
				continue
			}
		}
		// The blocking read holds its connection for up to 2s: it waits on
		// the store's own client for such reads (see New), so that the
		// caller's pool is not taken while no job comes.
		res, err := w.s.reads.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.opts.Name,
			Streams: []string{w.s.key("queue"), ">"}, Count: int64(free), Block: 2 * time.Second}).Result()
		if err != nil {
			for ; free > 0; free-- {
				<-slots
			}
			if errors.Is(err, goredis.Nil) || ctx.Err() != nil {
				drained = true // none came while it waited (or the loop ends)
				continue
			}
			drained = false
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
		drained = len(res[0].Messages) < free
		for ; free > len(res[0].Messages); free-- {
			<-slots // slots not used by this read
		}
		for _, m := range res[0].Messages {
			w.wg.Add(1)
			w.hand(func() {
				defer func() { <-slots; w.wg.Done() }()
				w.handle(ctx, m)
			})
		}
	}
}

// hand hands run to one of the worker's goroutines that waits, or to a
// new one when none waits and fewer than Concurrency were started; else
// it waits for one: run holds one of the read loop's slots, so at most
// Concurrency-1 others run, and a goroutine is about to wait. Read loop
// only.
func (w *worker) hand(run func()) {
	select {
	case w.work <- run:
		return
	default:
	}
	if w.spawned < w.opts.Concurrency {
		w.spawned++
		go func() {
			run()
			for run := range w.work {
				run()
			}
		}()
		return
	}
	w.work <- run
}

// claimLoop takes over messages that a dead worker read but never started.
func (w *worker) claimLoop(ctx context.Context) {
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
				go func() { defer w.wg.Done(); w.handle(ctx, m) }()
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
// It closes subscribed once Redis has confirmed the subscription (trying
// again with backoff while Redis does not answer).
func (w *worker) cancelLoop(ctx context.Context, subscribed chan<- struct{}) {
	sub := w.rdb.Subscribe(ctx, w.s.key("cancel"))
	defer sub.Close()
	for failures := 0; ; failures++ {
		_, err := sub.Receive(ctx) // the subscription's confirmation
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if failures == 0 {
			w.log.Warn("could not listen for cancels; no job is taken until it can", "error", err)
		}
		backoff(ctx, failures)
	}
	close(subscribed)
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			w.jobs.Cancel(m.Payload, exe.ErrCancelled)
		}
	}
}

// handle starts a queued job (if nobody did) and runs it under a lease.
func (w *worker) handle(ctx context.Context, m goredis.XMessage) {
	jid, _ := m.Values["jid"].(string)
	// Started and acknowledged in one step (or found not to need running
	// and acknowledged): a job is never delivered again after this, so it
	// runs at most once.
	sent := time.Now()
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
	w.run(jid, fields, sent)
}

// run runs a job the worker started, given its hash's fields and values;
// sent is the send time of the call that took its lease.
func (w *worker) run(jid string, fields []any, sent time.Time) {
	hash := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		hash[k] = v
	}
	if hash["cancel"] != "" {
		// Its cancel was asked while it was queued: its canceller ends
		// it, unless it stopped first. It never runs: its hosts are
		// SKIPPED "cancelled before start" (a job ended meanwhile is
		// left as it is).
		sctx, stop := context.WithTimeout(w.life, 10*time.Second)
		defer stop()
		if err := w.runner.Skip(sctx, jid, exe.ErrCancelled); err != nil {
			w.log.Warn("could not end a job cancelled before it started", "jid", jid, "error", err)
		}
		return
	}
	runCtx, cancel, end := w.jobs.Begin(context.Background(), jid)
	defer end()
	// The lease is renewed until the run returns, not until its context
	// ends: a cancelled job is still this worker's while its executor
	// reports the hosts the cancel interrupted and the Runner stores
	// them.
	hb := w.heartbeat(runCtx, jid, cancel, sent)
	defer hb.stop()
	w.log.Debug("running job", "jid", jid)
	var err error
	if job, derr := decodeJob(jid, hash); derr == nil {
		job.JID = jid
		err = w.runner.RunJob(runCtx, job) // saves reading what the take returned
	} else {
		err = w.runner.Run(runCtx, jid)
	}
	if err != nil {
		w.log.Error("job run", "jid", jid, "error", err)
	}
}

// heartbeat renews the job's lease until the run ends (stop). While
// Redis does not answer it tries again every Lease/10, and takes the
// lease again if it lapsed meanwhile while the job still runs as this
// worker's. A lease found taken, or a job found ended, means the job was
// cancelled or failed as lost: stop running it. Each renewal runs on a
// timer: a job that ends within Lease/3 starts none.
//
// It also fences the job: the lease, taken by a call sent at sent, lasts
// at least until the send time of the last renewal Redis confirmed plus
// Lease. FenceMargin before that, if no later renewal was confirmed, the
// run is cancelled with exe.ErrLeaseLost, so that its commands are
// stopped before the lost-lease recovery may release the job's hosts
// (DispatcherOptions.FenceMargin). The fence has a timer of its own: a
// renewal that hangs on a dead connection does not hold it up.
func (w *worker) heartbeat(ctx context.Context, jid string, cancel context.CancelCauseFunc, sent time.Time) *heartbeat {
	h := &heartbeat{w: w, jid: jid, ctx: ctx, cancel: cancel, until: sent.Add(w.opts.Lease)}
	h.fmu.Lock() // a fence that comes at once waits for h.fence
	h.fence = time.AfterFunc(time.Until(h.until)-w.opts.FenceMargin, h.fenceCheck)
	h.fmu.Unlock()
	h.mu.Lock() // a renewal that comes at once waits for h.t
	h.t = time.AfterFunc(w.opts.Lease/3, h.beat)
	h.mu.Unlock()
	return h
}

// heartbeat is one running job's lease renewal.
type heartbeat struct {
	w      *worker
	jid    string
	ctx    context.Context         // the job's run
	cancel context.CancelCauseFunc // the job's

	// mu is held by a renewal, so that stop waits for one under way
	// (whose call it cancels first, by abort): none runs after stop.
	mu      sync.Mutex
	t       *time.Timer
	failing bool

	amu   sync.Mutex
	abort context.CancelFunc // of the renewal under way; nil when none
	ended bool               // stop was called: no renewal starts

	// fmu guards the fence: until is when the lease may lapse at the
	// earliest (by this process's monotonic clock), fence the timer that
	// checks it FenceMargin before.
	fmu     sync.Mutex
	until   time.Time
	fence   *time.Timer
	fenced  bool // the fence cancelled the run
	unfence bool // stop was called: the fence no longer acts
}

// renewed notes a renewal (or a take again) that Redis confirmed, sent
// at sent: the lease lasts at least until sent plus Lease.
func (h *heartbeat) renewed(sent time.Time) {
	h.fmu.Lock()
	defer h.fmu.Unlock()
	if until := sent.Add(h.w.opts.Lease); until.After(h.until) {
		h.until = until
	}
}

// fenceCheck is the fence's timer: it cancels the run if no renewal
// since it was set has moved the lease's end, else waits for the new
// one.
func (h *heartbeat) fenceCheck() {
	h.fmu.Lock()
	if h.unfence || h.fenced {
		h.fmu.Unlock()
		return
	}
	if left := time.Until(h.until) - h.w.opts.FenceMargin; left > 0 {
		h.fence.Reset(left)
		h.fmu.Unlock()
		return
	}
	h.fenced = true
	h.fmu.Unlock()
	if h.ctx.Err() == nil {
		h.w.log.Warn("could not renew the lease of a running job before it may lapse; stopping the job",
			"jid", h.jid, "lease_left", time.Until(h.until).Round(time.Millisecond))
		h.cancel(exe.ErrLeaseLost)
	}
}

func (h *heartbeat) beat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.amu.Lock()
	if h.ended {
		h.amu.Unlock()
		return
	}
	// Renewals end when stop returns, or with the worker's life.
	ctx, abort := context.WithCancel(h.w.life)
	h.abort = abort
	h.amu.Unlock()
	defer func() {
		h.amu.Lock()
		h.abort = nil
		h.amu.Unlock()
		abort()
	}()
	w, jid := h.w, h.jid
	sent := time.Now()
	held, err := renewScript.Run(ctx, w.rdb, []string{w.s.leaseKey(jid), w.s.jobKey(jid)}, w.opts.Name, w.opts.Lease.Milliseconds()).Int()
	asked := held > 2 // its cancel was asked: held is 2 more
	if asked {
		held -= 2
	}
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		if !h.failing {
			w.log.Warn("could not renew the lease of a running job; retrying", "jid", jid, "error", err)
		}
		h.failing = true
		h.t.Reset(w.opts.Lease / 10)
		return
	case held == 0:
		w.log.Warn("the job is no longer this worker's (cancelled, or failed as lost); stopping it", "jid", jid)
		h.cancel(exe.ErrWorkerLost)
		return
	case held == 2:
		w.log.Warn("took the lease of a running job again after it lapsed", "jid", jid)
	case h.failing:
		w.log.Info("renewed the lease of a running job again", "jid", jid)
	}
	h.renewed(sent)
	if asked && h.ctx.Err() == nil {
		// The cancel's message did not reach this worker (its connection
		// to Redis was down when it was published).
		w.log.Info("found the job's cancel at its lease renewal; stopping it", "jid", jid)
		h.cancel(exe.ErrCancelled)
	}
	h.failing = false
	h.t.Reset(w.opts.Lease / 3)
}

// stop ends the renewals, cancelling one under way, and returns once
// none runs.
func (h *heartbeat) stop() {
	h.amu.Lock()
	h.ended = true
	if h.abort != nil {
		h.abort()
	}
	h.amu.Unlock()
	h.t.Stop()
	h.mu.Lock() // a renewal under way ends (it resets no timer that runs)
	h.t.Stop()
	h.mu.Unlock()
	h.fmu.Lock()
	h.unfence = true
	h.fence.Stop()
	h.fmu.Unlock()
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
