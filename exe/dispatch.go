package exe

import (
	"context"
	"errors"
	"fmt"
)

// JobRunner runs stored jobs for a Dispatcher's workers. The Engine builds
// the one it gives its Dispatcher (a *Runner on the Engine's store,
// executor and tasks), so that jobs always run with what the Engine
// validated them against.
type JobRunner interface {
	// Run executes job jid to completion, appending its events and
	// finishing it with its outcome. When ctx is cancelled with a cause
	// (ErrCancelled, ErrShutdown, ErrWorkerLost, ErrLeaseLost), the job
	// fails with that cause. A job that is no longer Running is left
	// alone. Its error is for the log: the job's own error is already
	// stored.
	Run(ctx context.Context, jid string) error
	// RunJob is Run for a job the worker has just read from the store.
	RunJob(ctx context.Context, job *Job) error
	// Fail finishes a job that will not run, as Failure with msg.
	Fail(ctx context.Context, jid, msg string) error
	// Skip finishes a job that never started, as Failure with cause's
	// text, after giving each host the SKIPPED event NotStarted(host,
	// cause).
	Skip(ctx context.Context, jid string, cause error) error
}

// ErrNotRunning is returned by Dispatcher.Cancel when no worker runs the
// job (it waits in the queue; see ErrWorkerGone for a worker that started
// it and is gone): the Engine then ends the job itself. It is between
// dispatchers and the Engine, never an answer to a client, so it is not
// one of ErrorKinds.
var ErrNotRunning = errors.New("no worker runs the job")

// ErrWorkerGone is returned by Dispatcher.Cancel when a worker started the
// job but no longer holds it (it died, or is cut off from the dispatcher,
// and no one has failed the job as lost yet). The Engine ends the job
// itself, as for ErrNotRunning, but the targets without an event may have
// started: they end FAILED "may still run", not SKIPPED. It wraps
// ErrNotRunning, so that a dispatcher's caller that checks only for
// ErrNotRunning still ends the job; like it, it is never an answer to a
// client.
var ErrWorkerGone = fmt.Errorf("%w: the worker that started it is gone", ErrNotRunning)

// Dispatcher hands stored jobs to workers that run them with the Engine's
// JobRunner. Its lifecycle belongs to the Engine that it is given to:
// NewEngine calls Start once, Engine.Shutdown calls Shutdown. A
// Dispatcher serves one Engine. Implementations pass the conformance
// suite in dispatchtest.
type Dispatcher interface {
	// Start gives the dispatcher the runner its workers run jobs with and
	// starts them. It is called once, by NewEngine; a second call is an
	// error.
	Start(runner JobRunner) error
	// Dispatch queues the stored job for execution. ErrBusy when it cannot
	// take it now (queue full, shutting down).
	Dispatch(ctx context.Context, jid string) error
	// Cancel interrupts the job's executor, with cause ErrCancelled, if a
	// worker is running it; the worker's Runner then stores each host's
	// last event (its result, FAILED "cancelled" with partial output, or
	// SKIPPED "cancelled before start") and finishes the job as cancelled.
	// When no worker runs the job it returns ErrNotRunning (still queued:
	// a queued job is not started afterwards), or ErrWorkerGone (the
	// worker that started it is gone): the Engine ends the job itself.
	Cancel(ctx context.Context, jid string) error
	// Shutdown stops taking jobs and gives the jobs its workers run a
	// grace period (or until ctx is done, if sooner); then it cancels
	// them with cause ErrShutdown, and fails those that still do not
	// return. Jobs that wait in its queue are ended (in-process) or left
	// for another process (a shared queue). It returns once no worker
	// of its runs a job; calling it again is harmless.
	Shutdown(ctx context.Context) error
}

// BoundDispatcher is a Dispatcher that works on the jobs of one JobStore
// of its own: it queues jobs beside them, or its workers read them from
// it (jobstore/redis's Dispatcher). JobStore returns that store, so that
// a job is never stored in one place and looked for in another:
// NewEngine takes it as Config.Store when that is nil, and refuses a
// Config.Store that is not it.
type BoundDispatcher interface {
	Dispatcher
	// JobStore is the store whose jobs the dispatcher queues and runs;
	// nil when it has none, which NewEngine refuses.
	JobStore() JobStore
}

// StoringDispatcher is implemented by dispatchers that share their backend
// with their job store and can store and queue a job in one step (one
// round trip to Redis instead of two). The Engine uses it when its
// Dispatcher has it; it must store the job exactly as its JobStore's
// Create would.
type StoringDispatcher interface {
	BoundDispatcher
	CreateAndDispatch(ctx context.Context, job *Job) error
}
