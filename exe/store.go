package exe

import (
	"context"
	"errors"
)

// JobStore keeps jobs and their events. Implementations must be safe for
// concurrent use by many goroutines (and, for shared stores, processes), and
// pass the conformance suite in jobstore/storetest.
type JobStore interface {
	// Create stores a new Running job. For mutex operations (Operate.Mutex)
	// it atomically locks every target, or locks nothing and returns a
	// *ConflictError when any target is held by another running job.
	Create(ctx context.Context, job *Job) error
	// Get returns the job; with outputs, ReturnData holds every event so far,
	// grouped by host. ErrNotFound for an unknown or expired job.
	Get(ctx context.Context, jid string, outputs bool) (*Job, error)
	// List returns the IDs of every stored job, newest first.
	List(ctx context.Context) ([]string, error)
	// Append records events in the order given, assigning each its Seq.
	// ErrFinished when the job has ended: a worker that lost its job (it was
	// cancelled, or its lease lapsed) writes nothing more.
	Append(ctx context.Context, jid string, events ...Event) error
	// Finish ends a running job with its outcome, stamps EndAt, releases its
	// locks and starts its retention clock. ErrFinished when it had ended.
	Finish(ctx context.Context, jid string, state JobState, msg string) error
	// Delete removes a finished job. ErrRunning while it runs.
	Delete(ctx context.Context, jid string) error
	// Follow calls fn with every event of the job from the first one, in
	// order, exactly once, blocking for new events until the job ends; then
	// it returns the final job (without outputs). It stops early with ctx's
	// error, or with fn's error when fn returns one.
	Follow(ctx context.Context, jid string, fn func(Event) error) (*Job, error)
	// Close releases the store's resources.
	Close() error
}

// ErrNotRunning is returned by Dispatcher.Cancel when no worker runs the
// job (it waits in the queue, or its worker is gone): the Engine then ends
// the job itself. It is between dispatchers and the Engine, never an
// answer to a client, so it is not one of ErrorKinds.
var ErrNotRunning = errors.New("no worker runs the job")

// Dispatcher hands stored jobs to workers that run them with a Runner.
type Dispatcher interface {
	// Dispatch queues the stored job for execution. ErrBusy when it cannot
	// take it now (queue full, shutting down).
	Dispatch(ctx context.Context, jid string) error
	// Cancel interrupts the job's executor, with cause ErrCancelled, if a
	// worker is running it; the worker's Runner then stores each host's
	// last event (its result, FAILED "cancelled" with partial output, or
	// SKIPPED "cancelled before start") and finishes the job as cancelled.
	// When no worker runs the job (still queued, or its worker is gone) it
	// returns ErrNotRunning, and a queued job is not started afterwards:
	// the Engine ends the job itself.
	Cancel(ctx context.Context, jid string) error
}

// CreateDispatcher is implemented by dispatchers that share their backend
// with the job store and can store and queue a job in one step (one round
// trip to Redis instead of two). The Engine uses it when its Dispatcher has
// it; it must store the job exactly as the Engine's JobStore.Create would.
type CreateDispatcher interface {
	CreateAndDispatch(ctx context.Context, job *Job) error
}
