// Package local is the in-process exe.Dispatcher: a bounded pool of worker
// goroutines reading a bounded queue. A full queue refuses new jobs with
// exe.ErrBusy rather than growing without limit; cancel reaches the running
// executor through its context; Shutdown stops taking jobs, gives running
// ones a grace period, and fails whatever is left as "server shutdown", so
// no job stays Running forever.
package local

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
)

// JobRunner runs stored jobs; *exe.Runner is one.
type JobRunner interface {
	// Run executes the job to completion; a cancelled ctx's cause becomes the
	// job's error.
	Run(ctx context.Context, jid string) error
	// Fail finishes a job that will not run.
	Fail(ctx context.Context, jid, msg string) error
}

// Defaults for Options.
const (
	DefaultQueue = 1024
	DefaultGrace = 30 * time.Second
	// afterGrace bounds how long Shutdown waits for cancelled jobs to return
	// before failing them itself: time for executors to stop their
	// commands (sshnative's default kill_grace twice, plus round trips)
	// and report them.
	afterGrace = 10 * time.Second
)

// Options configure a Dispatcher.
type Options struct {
	Workers int           // concurrent jobs; zero: runtime.NumCPU()
	Queue   int           // jobs waiting for a worker; zero: DefaultQueue
	Grace   time.Duration // what Shutdown gives running jobs; zero: DefaultGrace
	Logger  hclog.Logger  // nil: no logging
}

// Dispatcher is the in-process exe.Dispatcher.
type Dispatcher struct {
	runner JobRunner
	opts   Options
	log    hclog.Logger
	queue  chan string
	base   context.Context
	abort  context.CancelCauseFunc // cancels every running job
	wg     sync.WaitGroup

	stopping atomic.Bool
	mu       sync.Mutex
	closed   bool
	running  map[string]context.CancelCauseFunc
	// queued holds the jobs waiting in queue; true once cancelled there,
	// so that no worker starts them.
	queued map[string]bool
}

// skipper is a JobRunner that can also end a job that never started with
// an event for each of its hosts; *exe.Runner is one.
type skipper interface {
	Skip(ctx context.Context, jid string, cause error) error
}

var _ exe.Dispatcher = (*Dispatcher)(nil)

// New starts the workers.
func New(runner JobRunner, opts Options) *Dispatcher {
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	base, abort := context.WithCancelCause(context.Background())
	d := &Dispatcher{runner: runner, opts: opts, log: log, queue: make(chan string, opts.Queue),
		base: base, abort: abort, running: map[string]context.CancelCauseFunc{}, queued: map[string]bool{}}
	d.wg.Add(opts.Workers)
	for i := 0; i < opts.Workers; i++ {
		go d.work()
	}
	return d
}

// Dispatch queues a stored job. exe.ErrBusy when the queue is full or the
// dispatcher is shutting down.
func (d *Dispatcher) Dispatch(_ context.Context, jid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return exe.Errorf(exe.ErrBusy, "server is shutting down")
	}
	select {
	case d.queue <- jid:
		d.queued[jid] = false
		return nil
	default:
		return exe.Errorf(exe.ErrBusy, "job queue is full (%d jobs waiting); try again later", cap(d.queue))
	}
}

// Cancel interrupts the job's executor if a worker here runs it. A job
// still in the queue is left there to be dropped when it comes up, and,
// like a job this dispatcher does not hold, answered exe.ErrNotRunning.
func (d *Dispatcher) Cancel(_ context.Context, jid string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cancel := d.running[jid]; cancel != nil {
		cancel(exe.ErrCancelled)
		return nil
	}
	if _, ok := d.queued[jid]; ok {
		d.queued[jid] = true
	}
	return exe.ErrNotRunning
}

// Health reports exe.ErrBusy once shutdown has begun.
func (d *Dispatcher) Health(context.Context) error {
	if d.stopping.Load() {
		return exe.Errorf(exe.ErrBusy, "shutting down")
	}
	return nil
}

func (d *Dispatcher) work() {
	defer d.wg.Done()
	for jid := range d.queue {
		// Taken off the queue and marked running in one step: a cancel
		// either finds it queued or reaches its run.
		d.mu.Lock()
		cancelled := d.queued[jid]
		delete(d.queued, jid)
		stopping := d.stopping.Load()
		var ctx context.Context
		var cancel context.CancelCauseFunc
		if !cancelled && !stopping {
			ctx, cancel = context.WithCancelCause(d.base)
			d.running[jid] = cancel
		}
		d.mu.Unlock()
		switch {
		case cancelled: // ended by the canceller
		case stopping:
			d.skip(jid, exe.ErrShutdown)
		default:
			d.run(ctx, cancel, jid)
		}
	}
}

func (d *Dispatcher) run(ctx context.Context, cancel context.CancelCauseFunc, jid string) {
	defer func() {
		d.mu.Lock()
		delete(d.running, jid)
		d.mu.Unlock()
		cancel(nil)
		if p := recover(); p != nil {
			// The panic's text is for the log only: it may name anything.
			d.log.Error("job panicked", "jid", jid, "panic", p, "stack", string(debug.Stack()))
			d.fail(jid, "internal error")
		}
	}()
	if err := d.runner.Run(ctx, jid); err != nil {
		d.log.Error("job run failed", "jid", jid, "error", err)
		d.fail(jid, exe.PublicMessage(err))
	}
}

// skip ends a job that was never started: each host SKIPPED with cause.
func (d *Dispatcher) skip(jid string, cause error) {
	s, ok := d.runner.(skipper)
	if !ok {
		d.fail(jid, cause.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Skip(ctx, jid, cause); err != nil {
		d.log.Error("could not fail job", "jid", jid, "error", err)
	}
}

func (d *Dispatcher) fail(jid, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.runner.Fail(ctx, jid, msg); err != nil {
		d.log.Error("could not fail job", "jid", jid, "error", err)
	}
}

// Shutdown stops taking jobs and fails the queued ones as "server shutdown".
// Running jobs get the grace period (or until ctx is done, if sooner); then
// they are cancelled with cause exe.ErrShutdown, and any that still have not
// returned shortly after are failed directly. It returns when no worker is
// left.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.stopping.Store(true)
	close(d.queue) // no Dispatch can send now: it checks closed under mu
	d.mu.Unlock()

	idle := make(chan struct{})
	go func() { d.wg.Wait(); close(idle) }()
	grace := time.NewTimer(d.opts.Grace)
	defer grace.Stop()
	select {
	case <-idle:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	d.abort(exe.ErrShutdown)
	select {
	case <-idle:
		return nil
	case <-time.After(afterGrace):
	}
	// Executors that ignore cancellation: the jobs must not stay Running.
	d.mu.Lock()
	stuck := make([]string, 0, len(d.running))
	for jid := range d.running {
		stuck = append(stuck, jid)
	}
	d.mu.Unlock()
	for _, jid := range stuck {
		d.fail(jid, exe.ErrShutdown.Error())
	}
	return fmt.Errorf("local dispatcher: %d jobs did not stop within the grace period", len(stuck))
}
