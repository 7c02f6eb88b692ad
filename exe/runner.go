package exe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Cancellation causes a Runner reports as the job's error when its context
// is cancelled with them (context.WithCancelCause).
var (
	ErrCancelled  = errors.New("cancelled")
	ErrShutdown   = errors.New("server shutdown")
	ErrWorkerLost = errors.New("worker lost")
	// ErrServerLost is ErrWorkerLost for jobs that an API server ran itself
	// (a Redis store without separate workers).
	ErrServerLost = errors.New("server lost")
	// ErrLeaseLost is the cause a worker (or an API server running its
	// jobs itself) stops a job's commands with when it could not renew its
	// lease on the job (cut off from Redis) and the lease may lapse soon:
	// it stops them itself before the lost-lease recovery may fail the job
	// and release its hosts (see jobstore/redis, DispatcherOptions.
	// FenceMargin), so that the hosts' events and the job's error say what
	// happened to them.
	ErrLeaseLost = errors.New("its worker lost its lease: cut off from Redis")
)

const (
	// storeTimeout bounds each store write a Runner makes on behalf of a
	// job whose own context may already be cancelled.
	storeTimeout = 10 * time.Second
	// storeAfterStop is how long a Runner keeps retrying the writes of a
	// job whose context was cancelled (cancel, shutdown, lost lease): the
	// job is ending, and a store that does not answer by then is not
	// waited for any longer.
	storeAfterStop = 10 * time.Second
	// maxBatchEvents and maxBatchBytes bound one Append of queued events.
	maxBatchEvents = 1000
	maxBatchBytes  = 4 << 20
	// appendDelay is how long a job's events may wait to be stored when
	// its store is an AppendFinisher: an operation that returns sooner
	// (most jobs of a few hosts) has its events stored with its outcome,
	// in one write; a longer one has them written within appendDelay of
	// the first of them, then as they come.
	appendDelay = 10 * time.Millisecond
)

// DefaultMaxUnstoredBytes is Runner.MaxUnstoredBytes when it is zero.
const DefaultMaxUnstoredBytes = 32 << 20

// Runner executes stored jobs: it calls the executor (or task), appends every
// event to the store as it arrives (see below for an AppendFinisher), and
// finishes the job with its outcome.
// Dispatchers' workers call Run; a Runner is safe for concurrent use.
//
// Events are stored as they come, in batches, and the outcome after them.
// With a store that is an AppendFinisher, events wait up to appendDelay
// (10ms): a job whose operation returns by then is ended with its events
// in one write.
//
// A store that fails (a Redis outage) loses nothing and runs nothing
// twice: a job's events wait in memory, in order, and are written when
// the store answers again, retried with backoff (each event once: stores
// skip the events they already hold, by Seq); the outcome is written
// after them. While the job's context lives the Runner retries without
// limit (the worker's lease keeps the job its own); once the context is
// cancelled it retries failed writes for 10 more seconds, then gives up:
// events not stored by then are counted in the job's error, if it can
// still be written. Events that come later (an executor reporting the
// hosts a cancel interrupted) are still written, once each.
type Runner struct {
	Store    JobStore
	Executor Executor
	Tasks    map[string]Task // by type
	Logger   hclog.Logger    // nil: no logging
	// MaxUnstoredBytes bounds the size (about the bytes of their output
	// and messages) of one job's events that the store has not taken yet.
	// Past it the executor's emit waits until the store takes some, so a
	// long outage holds back a job's hosts rather than the server's
	// memory. One event is always taken, however large. Zero:
	// DefaultMaxUnstoredBytes.
	MaxUnstoredBytes int64
	// Observer is told of the jobs it runs and ends and of their hosts'
	// results (metrics), each result once the store took it. Nil:
	// NoObserver.
	Observer Observer
}

// Run executes job jid to completion. A job that is no longer Running (it
// was cancelled while queued) is left alone. When ctx is cancelled with a
// cause (ErrCancelled, ErrShutdown, ErrWorkerLost, ErrLeaseLost, ...), the job fails with
// that cause as its error. Errors it returns are for the log: the job's
// own error is already written when it could be.
func (r *Runner) Run(ctx context.Context, jid string) error {
	job, err := r.Store.Get(ctx, jid, false)
	if err != nil {
		return err
	}
	return r.RunJob(ctx, job)
}

// RunJob is Run for a job its caller has just read from the store (a
// worker that received it when it took the job), saving a read.
func (r *Runner) RunJob(ctx context.Context, job *Job) error {
	jid := job.JID
	if job.Finished() {
		return nil
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	// Failed writes are retried until storeAfterStop after the job's
	// context ended (writeCtx); a write is always tried at least once.
	writeCtx, giveUp := context.WithCancel(context.WithoutCancel(ctx))
	defer giveUp()
	unwatch := context.AfterFunc(ctx, func() { time.AfterFunc(storeAfterStop, giveUp) })
	defer unwatch()

	log := r.logger()
	log.Info("job started", jobKeys(job)...)
	began := time.Now()
	obs := r.observer()
	obs.JobStarted(job.Operate)
	defer func() { obs.JobStopped(job.Operate, time.Since(began)) }()
	rec := newRecorder(r, job, stop, writeCtx)
	defer rec.release() // a panic skips flush: let the writer end anyway
	// A job whose context ended before the operation was called started
	// nothing: its hosts are SKIPPED as not started.
	rec.started = ctx.Err() == nil
	emit := rec.emit
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, job.Timeout, timeoutError{job.Timeout})
		defer cancel()
		emit = func(ev Event) { rec.emit(timedOut(ctx, ev)) }
	}
	opErr := Perform(ctx, r.Executor, r.Tasks, job.Request, emit)
	if opErr != nil && ctx.Err() == nil {
		log.Warn("job operation failed", "jid", jid, "error", opErr)
	}
	state, msg := rec.outcome(ctx, job.Targets, opErr)
	last := rec.flush()
	if n := rec.lostCount(); n > 0 && ctx.Err() == nil {
		state, msg = JobFailure, fmt.Sprintf("%d events could not be stored", n)
	}
	ended, err := r.finish(writeCtx, jid, state, msg, last, rec.lastStored())
	switch {
	case ended:
		rec.observe(last) // stored with the end
		obs.JobEnded(job.Operate, state)
		logJobEnded(log, "job ended", job, state, msg, true, time.Since(began))
	case err == nil:
		// Ended meanwhile by another party, which logged it: say how
		// the run here ended, with the outcome in force.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(writeCtx), storeTimeout)
		defer cancel()
		if stored, gerr := r.Store.Get(gctx, jid, false); gerr == nil {
			state, msg = stored.State, stored.Error
		}
		logJobEnded(log, "job run ended; the job had already ended", job, state, msg, true, time.Since(began))
	}
	return err
}

// finish writes the job's outcome, after its last events (with the
// store's AppendFinish, in the same write), retrying with backoff until
// the store answers or writeCtx ends. ended is false, with no error, when
// the job had already ended (cancelled, or failed as lost: the store has
// its end, and the events are not stored).
//
// A job with no last events whose writer stored some, up to Seq stored,
// is ended by the store's FinishAfter when it has one: a call that a
// retry after a lost reply is known by, where a plain Finish retried
// finds the job ended and cannot tell by whom.
func (r *Runner) finish(writeCtx context.Context, jid string, state JobState, msg string, last []Event, stored int64) (ended bool, _ error) {
	after, _ := r.Store.(AfterFinisher)
	for failures := 0; ; failures++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(writeCtx), storeTimeout)
		var err error
		switch {
		case len(last) > 0:
			err = r.Store.(AppendFinisher).AppendFinish(actx, jid, state, msg, last...)
		case stored > 0 && after != nil:
			err = after.FinishAfter(actx, jid, state, msg, stored)
		default:
			err = r.Store.Finish(actx, jid, state, msg)
		}
		cancel()
		switch {
		case err == nil:
			if failures > 0 {
				r.logger().Info("stored the job's outcome after a store failure", "jid", jid, "attempts", failures+1)
			}
			return true, nil
		case errors.Is(err, ErrFinished):
			return false, nil
		case errors.Is(err, ErrNotFound):
			return false, fmt.Errorf("finish job %s: %w", jid, err)
		}
		if failures == 0 {
			r.logger().Warn("could not store the job's outcome; keeping it and retrying", "jid", jid, "error", err)
		}
		if !sleep(writeCtx, backoff(failures)) {
			return false, fmt.Errorf("finish job %s: gave up: %w", jid, err)
		}
	}
}

// Fail finishes, as Failure with msg, a job whose run could not end it (a
// Run that returned an error or panicked, a run that ignored its cancel at
// shutdown), and logs it "job ended". A job that already ended is left as
// it is.
func (r *Runner) Fail(ctx context.Context, jid, msg string) error {
	job, err := r.Store.Get(ctx, jid, false)
	if err != nil {
		return err
	}
	if job.Finished() {
		return nil
	}
	err = r.Store.Finish(ctx, jid, JobFailure, msg)
	if errors.Is(err, ErrFinished) {
		return nil
	}
	if err == nil {
		r.observer().JobEnded(job.Operate, JobFailure)
		logJobEnded(r.logger(), "job ended", job, JobFailure, msg, true, -1)
	}
	return err
}

// Skip finishes a job that was never started (queued at shutdown) as
// Failure with cause's text, after giving each of its targets the SKIPPED
// event NotStarted(host, cause), and logs it "job ended". A job that
// already ended is left as it is.
func (r *Runner) Skip(ctx context.Context, jid string, cause error) error {
	last := func(host string) Event { return NotStarted(host, cause) }
	job, err := endUnrun(ctx, r.Store, r.observer(), jid, cause, last)
	if job != nil {
		logJobEnded(r.logger(), "job ended", job, JobFailure, cause.Error(), false, -1)
	}
	return err
}

// endUnrun finishes a job no Runner will finish, as Failure with cause's
// text, after giving last(host) to each target that has no event yet,
// and tells obs what it stored: a HostResult for each event it gave, then
// JobEnded when it ended the job. It returns the job as read before the
// end (its request and owner, which never change, for the log) when it
// ended it; nil when the job had already ended, and was left as it is.
//
// last's event must not depend on the host but for its Host: a store
// that is an UnrunFinisher gives each such target last(""), in the same
// step as the end, and answers which targets it gave it to; obs is told
// of those, never of the targets a read before the end saw without an
// event (a worker may have stored one since). Any other store is read,
// then written twice (Append, Finish): obs is told of the events
// appended, which are stored, although a host whose event was stored
// between the read and the append then holds both.
func endUnrun(ctx context.Context, store JobStore, obs Observer, jid string, cause error, last func(host string) Event) (*Job, error) {
	uf, oneStep := store.(UnrunFinisher)
	job, err := store.Get(ctx, jid, !oneStep)
	if err != nil {
		return nil, err
	}
	if job.Finished() {
		return nil, nil
	}
	if oneStep {
		fill := last("")
		filled, err := uf.FinishUnrun(ctx, jid, cause.Error(), fill)
		switch {
		case errors.Is(err, ErrFinished):
			return nil, nil
		case err != nil:
			return nil, err
		}
		for range filled {
			obs.HostResult(job.Operate, fill.Status)
		}
		obs.JobEnded(job.Operate, JobFailure)
		return job, nil
	}
	var events []Event
	for _, h := range job.Targets {
		if len(job.ReturnData[h]) == 0 {
			events = append(events, last(h))
		}
	}
	if len(events) > 0 {
		if err := store.Append(ctx, jid, events...); err != nil {
			if errors.Is(err, ErrFinished) {
				return nil, nil
			}
			return nil, err
		}
		for _, ev := range events {
			obs.HostResult(job.Operate, ev.Status)
		}
	}
	switch err := store.Finish(ctx, jid, JobFailure, cause.Error()); {
	case errors.Is(err, ErrFinished):
		return nil, nil
	case err != nil:
		return nil, err
	}
	obs.JobEnded(job.Operate, JobFailure)
	return job, nil
}

func (r *Runner) observer() Observer {
	if r.Observer == nil {
		return NoObserver{}
	}
	return r.Observer
}

func (r *Runner) logger() hclog.Logger {
	if r.Logger == nil {
		return hclog.NewNullLogger()
	}
	return r.Logger
}

// backoff is the wait after the given number of failed writes before
// this one: 100ms, doubling, up to 2s.
func backoff(failures int) time.Duration {
	return min(100*time.Millisecond<<min(failures, 5), 2*time.Second)
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// recorder keeps what a running job's outcome needs, and queues its
// events for a writer goroutine that appends them in order, retrying
// while the store fails. With a store that is an AppendFinisher (lazy),
// the writer starts only appendDelay after the first event, or as soon
// as the queue fills a batch: a job that ends sooner leaves its events to
// the write of its outcome, and starts no goroutine.
type recorder struct {
	runner   *Runner
	jid      string
	op       Operate
	obs      Observer
	stop     context.CancelCauseFunc
	writeCtx context.Context // ends when failed writes are no longer retried
	max      int64
	started  bool // the operation was called: any host may have started

	mu      sync.Mutex
	room    *sync.Cond // signalled when queued events were taken or dropped
	seen    map[string]bool
	failed  map[string]bool
	lost    int     // events given up
	seq     int64   // Seq of the last event queued
	queue   []Event // emitted, not stored yet
	queued  int64   // their size
	flushed bool    // no more events come
	ended   bool    // the writer ended: further events are not stored
	wake    chan struct{}
	done    chan struct{} // closed when the writer ended

	stored int64 // Seq of the last event the writer stored

	lazy    bool        // the writer starts only when events have waited (see recorder)
	writing bool        // the writer goroutine was started
	timer   *time.Timer // starts the writer appendDelay after the first event
}

func newRecorder(r *Runner, job *Job, stop context.CancelCauseFunc, writeCtx context.Context) *recorder {
	rc := &recorder{runner: r, jid: job.JID, op: job.Operate, obs: r.observer(), stop: stop, writeCtx: writeCtx, max: r.MaxUnstoredBytes,
		seen: map[string]bool{}, failed: map[string]bool{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if rc.max <= 0 {
		rc.max = DefaultMaxUnstoredBytes
	}
	rc.room = sync.NewCond(&rc.mu)
	if _, ok := r.Store.(AppendFinisher); ok {
		rc.lazy = true
	} else {
		rc.startWriter()
	}
	return rc
}

// startWriter starts the writer goroutine, once; rc.mu is held, or rc is
// not shared yet.
func (rc *recorder) startWriter() {
	if !rc.writing {
		rc.writing = true
		go rc.write()
	}
}

// startLate is the timer's start of a lazy writer: not once the events
// went to the end's write (flush).
func (rc *recorder) startLate() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.flushed {
		rc.startWriter()
	}
}

// emit is the job's Emit: it notes the event for the outcome and queues
// it for the writer, numbered from 1 in emit order. It waits while the
// queue is over its size bound. The Observer hears of the event once the
// store took it (observe), not here: an event the store refuses (its job
// was ended meanwhile, by a cancel that gave the host an event of its
// own) is no host's result.
func (rc *recorder) emit(ev Event) {
	size := eventSize(ev)
	rc.mu.Lock()
	if ev.Host != AnnounceHost {
		rc.seen[ev.Host] = true
		if ev.Status.Failure() {
			rc.failed[ev.Host] = true
		}
	}
	if !rc.ended && len(rc.queue) > 0 && rc.queued+size > rc.max {
		rc.startWriter() // a lazy one too: room comes only from writes
	}
	for !rc.ended && len(rc.queue) > 0 && rc.queued+size > rc.max {
		rc.room.Wait()
	}
	if rc.ended {
		rc.mu.Unlock()
		return
	}
	rc.seq++
	ev.Seq = rc.seq
	rc.queue = append(rc.queue, ev)
	rc.queued += size
	switch {
	case rc.writing:
	case len(rc.queue) >= maxBatchEvents || rc.queued >= maxBatchBytes:
		rc.startWriter() // a batch is full: waiting saves no write
	case rc.timer == nil:
		rc.timer = time.AfterFunc(appendDelay, rc.startLate)
	}
	writing := rc.writing
	rc.mu.Unlock()
	if !writing {
		return
	}
	select {
	case rc.wake <- struct{}{}:
	default:
	}
}

// flush ends the recording; no event may be emitted after it. A lazy
// recorder whose writer never started returns the queued events, at most
// one batch, for the write of the job's outcome (which is the writer's
// end: later events are not stored). Otherwise it waits until every
// queued event is stored or given up, and returns nil.
func (rc *recorder) flush() []Event {
	rc.mu.Lock()
	if rc.timer != nil {
		rc.timer.Stop() // a start it missed sees flushed
	}
	if rc.lazy && !rc.writing {
		if n, _ := batchLen(rc.queue); n == len(rc.queue) {
			last := rc.queue
			rc.queue, rc.queued = nil, 0
			rc.flushed, rc.ended = true, true
			rc.room.Broadcast()
			rc.mu.Unlock()
			return last
		}
		rc.startWriter() // more than a batch: the writer stores them
	}
	rc.mu.Unlock()
	rc.release()
	<-rc.done
	return nil
}

// release tells the writer that no more events come: it ends once the
// queued ones are stored or given up. A lazy writer that was not started
// is started if events wait (a panic skipped flush).
func (rc *recorder) release() {
	rc.mu.Lock()
	rc.flushed = true
	if !rc.ended && len(rc.queue) > 0 {
		rc.startWriter()
	}
	rc.mu.Unlock()
	select {
	case rc.wake <- struct{}{}:
	default:
	}
}

// observe tells the Observer of events the store took: a host result
// for each (AnnounceHost's are no host's). A write retried after a
// failure is observed once, when it succeeds.
func (rc *recorder) observe(events []Event) {
	for _, ev := range events {
		if ev.Host != AnnounceHost {
			rc.obs.HostResult(rc.op, ev.Status)
		}
	}
}

// lastStored is the Seq of the last event the writer stored, for the
// end's write (see Runner.finish); 0 when it stored none.
func (rc *recorder) lastStored() int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.stored
}

func (rc *recorder) lostCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.lost
}

// write appends queued events in batches until flush, in order. A batch
// that fails stays first in the queue and is sent again, with what was
// queued since: the store skips events it already holds (by Seq), so a
// write whose reply was lost stores nothing twice.
func (rc *recorder) write() {
	defer close(rc.done)
	log := rc.runner.logger()
	failures := 0
	for {
		rc.mu.Lock()
		if len(rc.queue) == 0 {
			if rc.flushed {
				rc.ended = true
				rc.mu.Unlock()
				return
			}
			rc.mu.Unlock()
			<-rc.wake
			continue
		}
		n, size := batchLen(rc.queue)
		batch := rc.queue[:n:n]
		rc.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.WithoutCancel(rc.writeCtx), storeTimeout)
		err := rc.runner.Store.Append(ctx, rc.jid, batch...)
		cancel()
		if err == nil {
			if failures > 0 {
				log.Info("stored a job's events after a store failure", "jid", rc.jid, "attempts", failures+1)
			}
			failures = 0
			rc.observe(batch)
			rc.mu.Lock()
			rc.stored = batch[n-1].Seq
			rc.queue = rc.queue[n:]
			rc.queued -= size
			rc.room.Broadcast()
			rc.mu.Unlock()
			continue
		}
		if errors.Is(err, ErrFinished) || errors.Is(err, ErrNotFound) {
			// The job ended under us (cancelled, failed as lost) or is
			// gone: stop the work; nothing more can be stored.
			rc.end(0)
			rc.stop(ErrCancelled)
			return
		}
		if failures == 0 {
			log.Warn("could not store a job's events; keeping them and retrying", "jid", rc.jid, "events", len(batch), "error", err)
		}
		if !sleep(rc.writeCtx, backoff(failures)) {
			rc.mu.Lock()
			n := len(rc.queue)
			rc.mu.Unlock()
			log.Error("gave up storing a job's events", "jid", rc.jid, "events", n, "error", err)
			rc.end(n)
			return
		}
		failures++
	}
}

// batchLen is how many of the queued events one write takes, and their
// size.
func batchLen(queue []Event) (n int, size int64) {
	for n < len(queue) && n < maxBatchEvents && (n == 0 || size < maxBatchBytes) {
		size += eventSize(queue[n])
		n++
	}
	return n, size
}

// end stops the writer: queued events are dropped, lost of them counted,
// and emit stops queueing.
func (rc *recorder) end(lost int) {
	rc.mu.Lock()
	rc.ended = true
	rc.lost += lost
	rc.queue, rc.queued = nil, 0
	rc.room.Broadcast()
	rc.mu.Unlock()
}

// operationError is the job's error for the error its executor or task
// returned: the public text of an error that has one (see
// PublicMessage), else the error's text, which executors and tasks write
// for their users (their details are logged by RunJob).
func operationError(err error) string {
	var pub interface{ PublicMessage() string }
	if errors.As(err, &pub) {
		return pub.PublicMessage()
	}
	return err.Error()
}

// eventSize is about the bytes an event holds: its texts, and the JSON of
// its facts and extra fields.
func eventSize(ev Event) int64 {
	n := 64 + len(ev.Host) + len(ev.Name) + len(ev.Msg)
	if ev.Exec != nil {
		n += len(ev.Exec.Stdout) + len(ev.Exec.Stderr)
	}
	for _, m := range []map[string]any{ev.Facts, ev.Extra} {
		if m != nil {
			b, _ := json.Marshal(m)
			n += len(b)
		}
	}
	return int64(n)
}

// outcome applies API.md's rules: Done only if every target ended without
// FAILED/UNREACHABLE; a target that reported nothing counts as failed.
// Every target ends with an event, emitted here for those that have none:
//
//   - a job interrupted by its context (cancel, shutdown, lost lease)
//     fails with the cause; its silent targets are SKIPPED NotStarted only
//     when nothing had started (the context ended before the operation was
//     called), else FAILED saying no result was reported and the command
//     may have been running: an executor reports the hosts it never
//     started itself (NotStarted), and one that ignores the cancel, or a
//     plugin that dies, leaves the Runner unable to tell;
//   - an operation that failed as a whole (its executor or task returned
//     an error) fails with the error's public text; its silent targets are
//     SKIPPED when the request was refused (ErrInvalid, ErrNotSupported:
//     nothing runs), else FAILED "not completed: <error>; the remote
//     command may still be running";
//   - otherwise a silent target is UNREACHABLE "no result was reported".
//
// The job is finished only after these events are stored, so followers see
// them before the final job line.
func (rc *recorder) outcome(ctx context.Context, targets []string, opErr error) (JobState, string) {
	var silent []string
	rc.mu.Lock()
	for _, h := range targets {
		if !rc.seen[h] {
			silent = append(silent, h)
		}
	}
	rc.mu.Unlock()
	sort.Strings(silent)
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if cause == nil || errors.Is(cause, context.Canceled) {
			cause = ErrCancelled
		}
		for _, h := range silent {
			if rc.started {
				rc.emit(NoResult(h, cause))
			} else {
				rc.emit(NotStarted(h, cause))
			}
		}
		return JobFailure, cause.Error()
	}
	if opErr != nil {
		// A plugin's error may quote what a host printed.
		text := ToValidUTF8(operationError(opErr))
		for _, h := range silent {
			if errors.Is(opErr, ErrInvalid) || errors.Is(opErr, ErrNotSupported) {
				rc.emit(Event{Host: h, Status: HostSkipped, Msg: "not started: " + text})
			} else {
				rc.emit(Event{Host: h, Status: HostFailed, Msg: "not completed: " + text + "; the remote command may still be running"})
			}
		}
		return JobFailure, text
	}
	for _, h := range silent {
		rc.emit(Event{Host: h, Status: HostUnreachable, Msg: "no result was reported for this host"})
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if n := len(rc.failed); n > 0 {
		return JobFailure, fmt.Sprintf("%d of %d hosts failed", n, len(targets))
	}
	return JobDone, ""
}

// Perform runs req's operation on its targets with exec, sending events to
// emit. Tasks are looked up in tasks by type. It is the one place that maps
// an operation to an Executor method, shared by sync runs and workers.
// Every event reaches emit with valid UTF-8 strings (Event.ToValidUTF8):
// what a host prints never fails what carries it on. req.Forks reaches
// the executor in ctx (ForksFrom).
func Perform(ctx context.Context, exec Executor, tasks map[string]Task, req Request, emit Emit) error {
	raw := emit
	emit = func(ev Event) { raw(ev.ToValidUTF8()) }
	ctx = WithForks(ctx, req.Forks)
	switch req.Operate {
	case OpPing:
		return exec.Ping(ctx, req.Targets, emit)
	case OpFacter:
		return exec.Facter(ctx, req.Targets, emit)
	case OpService:
		return exec.Service(ctx, req.Targets, req.Service, emit)
	case OpExecute:
		return exec.Execute(ctx, req.Targets, req.Execute, emit)
	case OpDeploy:
		return exec.Deploy(ctx, req.Targets, req.Deploy, emit)
	case OpTask:
		task, ok := tasks[req.Task.Type]
		if !ok {
			return Errorf(ErrInvalid, "tasktype: unknown task type %q", req.Task.Type)
		}
		return task.Run(ctx, exec, req.Targets, req.Task, emit)
	}
	return Errorf(ErrInvalid, "unknown operation %q", req.Operate)
}

// timeoutError is the cause of a job's context when its Request.Timeout
// passes: the job's error says how long it was given, and it matches
// context.DeadlineExceeded as executors see it.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string { return "timed out after " + seconds(e.d) }
func (e timeoutError) Unwrap() error { return context.DeadlineExceeded }

// timedOut turns the SKIPPED "timed out before start" event of a host that
// the job's timeout kept from starting into a FAILED one: the job was
// asked to finish within its timeout, and on that host it did not, as a
// sync request's unfinished hosts are FAILED. Other events pass unchanged.
func timedOut(ctx context.Context, ev Event) Event {
	if ev.Status == HostSkipped && ev.Name == "" && errors.As(context.Cause(ctx), new(timeoutError)) &&
		ev.Msg == NotStarted(ev.Host, context.DeadlineExceeded).Msg {
		ev.Status = HostFailed
	}
	return ev
}
