package exe

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/0ops/exed/internal/running"
	"github.com/hashicorp/go-hclog"
)

// Defaults for LocalOptions.
const (
	DefaultLocalQueue = 1024
	DefaultLocalGrace = 30 * time.Second
	// DefaultJobsAtOnce is how many jobs a dispatcher runs at once by
	// default. A job mostly waits on its hosts, so it is not the CPU
	// count; each job works on up to its executor's forks hosts at once.
	DefaultJobsAtOnce = 16
)

// LocalOptions configure a LocalDispatcher. Zero fields take their
// defaults; negative ones are refused by Start (so by NewEngine).
type LocalOptions struct {
	Workers int           // jobs run at once; zero: DefaultJobsAtOnce
	Queue   int           // jobs waiting for a worker (not those cancelled there); zero: DefaultLocalQueue
	Grace   time.Duration // what Shutdown gives running jobs; zero: DefaultLocalGrace
	Logger  hclog.Logger  // nil: no logging
}

// LocalDispatcher is the in-process Dispatcher, the Engine's default: a
// bounded pool of worker goroutines taking jobs, first in first out, from
// a bounded queue. A full queue refuses new jobs with ErrBusy rather than
// growing without limit; only jobs that still wait count toward its
// bound, so a job cancelled in the queue leaves it at once. Cancel
// reaches the running executor through its context; Shutdown stops
// taking jobs, ends the queued ones at once (each host SKIPPED "server
// shutdown"), gives running ones the grace period, and fails whatever is
// left as "server shutdown", so no job stays Running forever.
type LocalDispatcher struct {
	opts LocalOptions
	log  hclog.Logger
	jobs running.Jobs
	wg   sync.WaitGroup

	bad      error     // what NewLocalDispatcher refused, for Start to return
	runner   JobRunner // set by Start
	stopping atomic.Bool
	mu       sync.Mutex
	started  bool
	closed   bool
	// waiting holds the jids of the queued jobs, oldest first, and queued
	// their elements: a cancel takes its job out at once, so that the
	// bound (opts.Queue) counts only jobs that will run. Both under mu.
	waiting *list.List
	queued  map[string]*list.Element
	// ready is signalled (on mu) when a job is queued, and broadcast when
	// Shutdown lets the workers go.
	ready *sync.Cond
}

var _ Dispatcher = (*LocalDispatcher)(nil)

// NewLocalDispatcher returns a dispatcher whose workers start when an
// Engine starts it.
func NewLocalDispatcher(opts LocalOptions) *LocalDispatcher {
	var bad error
	switch {
	case opts.Workers < 0:
		bad = errors.New("exe: LocalOptions.Workers is negative (zero means the default)")
	case opts.Queue < 0:
		bad = errors.New("exe: LocalOptions.Queue is negative (zero means the default)")
	case opts.Grace < 0:
		bad = errors.New("exe: LocalOptions.Grace is negative (zero means the default)")
	}
	opts.Workers = orDefault(opts.Workers, DefaultJobsAtOnce)
	opts.Queue = orDefault(opts.Queue, DefaultLocalQueue)
	opts.Grace = orDefault(opts.Grace, DefaultLocalGrace)
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	d := &LocalDispatcher{opts: opts, log: log, waiting: list.New(), queued: map[string]*list.Element{}, bad: bad}
	d.ready = sync.NewCond(&d.mu)
	return d
}

// Start implements Dispatcher: it starts the workers.
func (d *LocalDispatcher) Start(runner JobRunner) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bad != nil {
		return d.bad
	}
	if d.started {
		return errors.New("exe: the local dispatcher is already started: a dispatcher serves one engine")
	}
	d.started, d.runner = true, runner
	d.wg.Add(d.opts.Workers)
	for i := 0; i < d.opts.Workers; i++ {
		go d.work()
	}
	return nil
}

// Dispatch implements Dispatcher: it queues a stored job behind those
// that wait. ErrBusy when opts.Queue jobs wait already (its message says
// how many) or the dispatcher is shutting down.
func (d *LocalDispatcher) Dispatch(_ context.Context, jid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return Errorf(ErrBusy, "server is shutting down")
	case !d.started:
		return errors.New("exe: the local dispatcher is not started (give it to NewEngine)")
	}
	if _, ok := d.queued[jid]; ok {
		return nil // already waiting: queued once, it runs once
	}
	if d.waiting.Len() >= d.opts.Queue {
		return Errorf(ErrBusy, "job queue is full (%d jobs waiting); try again later", d.waiting.Len())
	}
	d.queued[jid] = d.waiting.PushBack(jid)
	d.ready.Signal()
	return nil
}

// Cancel implements Dispatcher: it interrupts the job's executor if a
// worker here runs it. A job still in the queue is taken out of it (no
// worker starts it, and it no longer counts toward the queue's bound)
// and, like a job this dispatcher does not hold, answered ErrNotRunning:
// the Engine ends it.
func (d *LocalDispatcher) Cancel(_ context.Context, jid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.jobs.Cancel(jid, ErrCancelled) {
		return nil
	}
	if e, ok := d.queued[jid]; ok {
		d.waiting.Remove(e)
		delete(d.queued, jid)
	}
	return ErrNotRunning
}

// Health implements HealthChecker: ErrBusy once shutdown has begun.
func (d *LocalDispatcher) Health(context.Context) error {
	if d.stopping.Load() {
		return Errorf(ErrBusy, "shutting down")
	}
	return nil
}

func (d *LocalDispatcher) work() {
	defer d.wg.Done()
	for {
		// Taken off the queue and marked running in one step: a cancel
		// either finds it queued or reaches its run.
		d.mu.Lock()
		for d.waiting.Len() == 0 && !d.closed {
			d.ready.Wait()
		}
		if d.closed { // Shutdown took the queued jobs
			d.mu.Unlock()
			return
		}
		jid := d.waiting.Remove(d.waiting.Front()).(string)
		delete(d.queued, jid)
		ctx, _, end := d.jobs.Begin(context.Background(), jid)
		d.mu.Unlock()
		d.run(ctx, end, jid)
	}
}

func (d *LocalDispatcher) run(ctx context.Context, end func(), jid string) {
	defer func() {
		end()
		if p := recover(); p != nil {
			// The panic's text is for the log only: it may name anything.
			d.log.Error("job panicked", "jid", jid, "panic", p, "stack", string(debug.Stack()))
			d.fail(jid, "internal error")
		}
	}()
	if err := d.runner.Run(ctx, jid); err != nil {
		d.log.Error("job run failed", "jid", jid, "error", err)
		d.fail(jid, PublicMessage(err))
	}
}

// skip ends a job that was never started: each host SKIPPED with cause.
func (d *LocalDispatcher) skip(jid string, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := d.runner.Skip(ctx, jid, cause); err != nil {
		d.log.Error("could not fail job", "jid", jid, "error", err)
	}
}

func (d *LocalDispatcher) fail(jid, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := d.runner.Fail(ctx, jid, msg); err != nil {
		d.log.Error("could not fail job", "jid", jid, "error", err)
	}
}

// Shutdown implements Dispatcher: it stops taking jobs and ends the queued
// ones at once, each host SKIPPED "server shutdown", without waiting for
// a worker to be free. Running jobs get the grace period (or until ctx is
// done, if sooner); then they are cancelled with cause ErrShutdown, and
// any that still have not returned shortly after are failed directly. It
// returns when no worker is left and every queued job is ended.
func (d *LocalDispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true // no Dispatch queues a job now: it checks closed under mu
	d.stopping.Store(true)
	unstarted := make([]string, 0, d.waiting.Len())
	for e := d.waiting.Front(); e != nil; e = e.Next() {
		unstarted = append(unstarted, e.Value.(string))
	}
	d.waiting.Init()
	clear(d.queued)
	d.wg.Add(1)
	d.ready.Broadcast()
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		for _, jid := range unstarted {
			d.skip(jid, ErrShutdown)
		}
	}()

	idle := make(chan struct{})
	go func() { d.wg.Wait(); close(idle) }()
	stuck := d.jobs.Drain(ctx, idle, d.opts.Grace, ErrShutdown, func(jid string) { d.fail(jid, ErrShutdown.Error()) })
	if len(stuck) > 0 {
		return fmt.Errorf("local dispatcher: %d jobs did not stop within the grace period", len(stuck))
	}
	return nil
}

// orDefault is v, or def when v is zero or less: options' zero means the
// default.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
