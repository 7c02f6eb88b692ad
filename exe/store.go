package exe

import "context"

// JobStore keeps jobs and their events. Implementations must be safe for
// concurrent use by many goroutines (and, for shared stores, processes), and
// pass the conformance suite in jobstore/storetest.
type JobStore interface {
	// Create stores a new Running job. For mutex operations (Operate.Mutex)
	// it atomically locks every target under its LockKey, or locks nothing
	// and returns a *ConflictError naming the target when any target's key
	// is held by another running job.
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
	// Follow calls fn with every event of the job whose Seq is greater
	// than from (0: from the first one), in order, exactly once, blocking
	// for new events until the job ends; then it returns the final job
	// (without outputs). Skipped events cost no decoding and no call of
	// fn; a from beyond the events stored so far skips the ones still to
	// come up to it. It stops early with ctx's error, or with fn's error
	// when fn returns one. An event's maps (Facts, Extra) may be shared
	// with the store and other follows: fn must not modify them.
	Follow(ctx context.Context, jid string, from int64, fn func(Event) error) (*Job, error)
	// Close releases the store's resources.
	Close() error
}

// BatchFollower is a JobStore that hands a follow the events it read
// together in one call of fn, so that a follower can write them in one go
// (transport/http flushes a follow stream once per batch). Its
// FollowBatches has Follow's contract, with fn getting the events in
// order, in batches of at least one; fn must neither modify nor keep the
// slice after it returns. The stores of this module implement it;
// Engine.FollowBatches falls back to batches of one event for a store that
// does not.
type BatchFollower interface {
	FollowBatches(ctx context.Context, jid string, from int64, fn func([]Event) error) (*Job, error)
}

// AppendFinisher is a JobStore that stores a job's last events and its
// outcome in one step, as Append then Finish would, so that a job whose
// events are still queued when its operation returns ends in one write.
// Events follow Append's rules: in the order given, and when numbered by
// their writer (Seq consecutive from the first) those the store already
// holds are skipped, so a call retried after its reply was lost stores
// each event once. ErrFinished when the job had ended (nothing is
// stored), except that the same call made again after its reply was
// lost may find the job ended by itself and return nil; ErrNotFound for
// an unknown job. A Runner uses it when its store has it; the store's
// followers see the events, then the end.
type AppendFinisher interface {
	AppendFinish(ctx context.Context, jid string, state JobState, msg string, events ...Event) error
}

// AfterFinisher is a JobStore that ends a Running job whose writer has
// stored its events up to Seq seq (numbered as for AppendFinisher), with
// its outcome and no events: a plain Finish, but one that a retry knows
// as itself. The same call made again after its reply was lost finds the
// job ended by itself and returns nil; ErrFinished when another party
// ended it; ErrNotFound for an unknown job. A Runner uses it, when its
// store has it, to end a job whose events were all stored while it ran,
// where a plain Finish retried could not tell its own end from another's
// (ErrFinished: the end uncounted, logged "already ended").
type AfterFinisher interface {
	FinishAfter(ctx context.Context, jid string, state JobState, msg string, seq int64) error
}

// UnrunFinisher is a JobStore that ends, in one step, a Running job that
// no Runner will finish (cancelled while queued, queued at shutdown, its
// worker gone): each target without an event gets fill, with Host set to
// the target, and the job ends as Failure with msg, its locks released
// (or, for a job whose worker may still run it, kept: see below).
// Two that end the same job at once (an API's cancel and the worker that
// takes the job meanwhile) so store one event per target and one end,
// where Append then Finish could store two.
//
// filled is the targets that got fill, in the order of the job's
// Targets (their events' order): those that had no event when the job
// ended, so a host whose event was stored after the caller last read the
// job is not among them. It is what the caller reports (metrics, logs),
// never a count from a job read before the call. It is nil with an
// error.
//
// ErrFinished when the job had ended (nothing is stored), except that the
// same call made again after its reply was lost may find the job ended by
// itself and return nil, with the same filled as the call that took
// effect; ErrNotFound for an unknown job. The Engine and the Runner use
// it when their store has it; the stores of this module do.
//
// A fill that is not SKIPPED says a worker started the job and may still
// run its command. A store whose workers can be cut off from it and stop
// their jobs themselves within a bound (jobstore/redis: a lease) keeps the
// job's locks until that bound has passed rather than releasing them
// with the end, and reports them held (ConflictError.Held).
type UnrunFinisher interface {
	FinishUnrun(ctx context.Context, jid string, msg string, fill Event) (filled []string, err error)
}
