// Package memory is an in-process exe.JobStore: the embedded default, and the
// store tests use. It is safe for concurrent use and bounds its memory: a
// finished job is kept for a retention period, at most MaxJobs jobs are
// kept at once, and the jobs kept hold at most MaxBytes of events (the
// first finished make room for new ones). It keeps nothing on disk: every
// job, running or finished, is lost when the process ends.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/0ops/exed/exe"
)

// Defaults for Options.
const (
	DefaultRetention = 24 * time.Hour
	DefaultMaxJobs   = 10000
)

// Options configure a Store.
type Options struct {
	// Retention is how long a finished job is kept. Zero or negative:
	// DefaultRetention.
	Retention time.Duration
	// MaxJobs caps how many jobs are kept. When full, the oldest finished
	// job is dropped; when every job is running, Create fails with
	// exe.ErrBusy. Zero or negative: DefaultMaxJobs.
	MaxJobs int
	// MaxBytes caps the bytes the kept jobs hold: their events (output,
	// messages, facts) and requests, estimated as the heap they occupy
	// (see Store.Bytes). Counting jobs alone does not bound memory: one
	// job of many hosts with large output holds tens of megabytes.
	//
	// When an Append or a Create takes the total past MaxBytes, finished
	// jobs are dropped, the first to finish first, until it fits. A
	// running job is never dropped and its events are never refused, so
	// that no result of a command that ran is lost: running jobs may hold
	// more than MaxBytes between them, and while they do (with no finished
	// job left to drop) Create fails with exe.ErrBusy.
	//
	// Zero: DefaultMaxBytes(), an eighth of the machine's memory; negative:
	// no byte budget.
	MaxBytes int64
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Store is the in-memory exe.JobStore.
type Store struct {
	opts Options

	mu    sync.Mutex
	jobs  map[string]*entry
	order []string          // jids in creation order, oldest first; may hold deleted ones
	ended []expiry          // finished jobs in finishing order, so in expiry order
	locks map[string]string // exe.LockKey(host) -> jid of the running mutex job holding it
	bytes int64             // sum of the kept entries' bytes
	gen   uint64            // last entry generation handed out
}

type entry struct {
	job     exe.Job // ReturnData always nil here
	events  []exe.Event
	expires time.Time // zero while running
	bytes   int64     // estimated heap held by job and events
	gen     uint64    // tells this entry from an earlier one of the same jid
	// changed is closed and replaced on every append and on finish, waking
	// followers.
	changed chan struct{}
}

// expiry is a finished job in ended. It names its entry by jid and
// generation, not by pointer, so that a job dropped early (Delete, the
// budgets) is not kept alive by its place in the queue.
type expiry struct {
	jid string
	gen uint64
	at  time.Time
}

var (
	_ exe.JobStore       = (*Store)(nil)
	_ exe.AppendFinisher = (*Store)(nil)
	_ exe.UnrunFinisher  = (*Store)(nil)
)

// New returns an empty Store.
func New(opts Options) *Store {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = DefaultMaxJobs
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{opts: opts, jobs: map[string]*entry{}, locks: map[string]string{}}
}

// sweep drops finished jobs whose retention has passed. Callers hold mu.
func (s *Store) sweep(now time.Time) {
	i := 0
	for ; i < len(s.ended) && !s.ended[i].at.After(now); i++ {
		s.dropEnded(s.ended[i])
	}
	if i > 0 {
		s.ended = append(s.ended[:0], s.ended[i:]...)
	}
}

// dropEnded drops the finished job x names, if it is still that entry.
// Callers hold mu.
func (s *Store) dropEnded(x expiry) bool {
	if e, ok := s.jobs[x.jid]; ok && e.gen == x.gen {
		s.drop(x.jid)
		return true
	}
	return false
}

// dropOldestFinished drops the first job to have finished among those
// kept; false when no finished job is left. Callers hold mu.
func (s *Store) dropOldestFinished() bool {
	for len(s.ended) > 0 {
		x := s.ended[0]
		s.ended = s.ended[1:]
		if s.dropEnded(x) {
			return true
		}
	}
	return false
}

// fitBytes drops finished jobs, the first to finish first, until the kept
// jobs plus extra bytes fit the byte budget or no finished job is left;
// it reports whether they fit. Callers hold mu.
func (s *Store) fitBytes(extra int64) bool {
	if s.opts.MaxBytes < 0 {
		return true
	}
	for s.bytes+extra > s.opts.MaxBytes {
		if !s.dropOldestFinished() {
			return false
		}
	}
	return true
}

// drop removes a job; its jid stays in order until compaction. Callers hold mu.
func (s *Store) drop(jid string) {
	if e, ok := s.jobs[jid]; ok {
		s.bytes -= e.bytes
	}
	delete(s.jobs, jid)
	if len(s.order) > 64 && len(s.order) > 2*len(s.jobs) {
		kept := s.order[:0]
		for _, id := range s.order {
			if _, ok := s.jobs[id]; ok {
				kept = append(kept, id)
			}
		}
		s.order = kept
	}
}

// get returns a live entry. Callers hold mu.
func (s *Store) get(jid string) (*entry, error) {
	s.sweep(s.opts.Now())
	e, ok := s.jobs[jid]
	if !ok {
		return nil, exe.ErrNotFound
	}
	return e, nil
}

// Create stores a new running job, locking its hosts for mutex operations.
func (s *Store) Create(_ context.Context, job *exe.Job) error {
	if job.JID == "" {
		return fmt.Errorf("memory: job has no JID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.opts.Now())
	if _, ok := s.jobs[job.JID]; ok {
		return fmt.Errorf("memory: job %s already exists", job.JID)
	}
	if job.Operate.Mutex() {
		for _, h := range job.Targets {
			if holder, ok := s.locks[exe.LockKey(h)]; ok {
				return &exe.ConflictError{Host: h, JID: holder}
			}
		}
	}
	for len(s.jobs) >= s.opts.MaxJobs {
		if !s.dropOldestFinished() {
			return exe.Errorf(exe.ErrBusy, "job table full: %d jobs are running", len(s.jobs))
		}
	}
	size := requestBytes(job)
	if !s.fitBytes(size) {
		return exe.Errorf(exe.ErrBusy, "job store full: running jobs hold %s of output, over its budget of %s",
			byteSize(s.bytes), byteSize(s.opts.MaxBytes))
	}
	if job.Operate.Mutex() {
		for _, h := range job.Targets {
			s.locks[exe.LockKey(h)] = job.JID
		}
	}
	stored := *job
	stored.State = exe.JobRunning
	stored.EndAt = 0
	stored.Error = ""
	stored.ReturnData = nil
	stored.Targets = append([]string(nil), job.Targets...)
	s.gen++
	s.jobs[job.JID] = &entry{job: stored, changed: make(chan struct{}), bytes: size, gen: s.gen}
	s.bytes += size
	s.order = append(s.order, job.JID)
	return nil
}

// Get returns a copy of the job, with its events grouped by host if outputs.
func (s *Store) Get(_ context.Context, jid string, outputs bool) (*exe.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.get(jid)
	if err != nil {
		return nil, err
	}
	job := e.job
	if outputs {
		job.ReturnData = make(map[string][]exe.Event)
		for _, ev := range e.events {
			job.ReturnData[ev.Host] = append(job.ReturnData[ev.Host], ev)
		}
	}
	return &job, nil
}

// List returns job IDs, newest first.
func (s *Store) List(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.opts.Now())
	ids := make([]string, 0, len(s.jobs))
	for i := len(s.order) - 1; i >= 0; i-- {
		if _, ok := s.jobs[s.order[i]]; ok {
			ids = append(ids, s.order[i])
		}
	}
	return ids, nil
}

// Append records events in order and wakes followers.
func (s *Store) Append(_ context.Context, jid string, events ...exe.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.running(jid)
	if err != nil {
		return err
	}
	s.add(e, events)
	close(e.changed)
	e.changed = make(chan struct{})
	return nil
}

// running returns jid's entry, ErrFinished when the job has ended;
// s.mu held.
func (s *Store) running(jid string) (*entry, error) {
	e, err := s.get(jid)
	if err == nil && e.job.Finished() {
		return nil, exe.ErrFinished
	}
	return e, err
}

// add records events on e (Running), numbered after its last, without
// waking its followers; s.mu held.
func (s *Store) add(e *entry, events []exe.Event) {
	var added int64
	for _, ev := range events {
		ev.Seq = int64(len(e.events) + 1)
		e.events = append(e.events, ev)
		added += eventBytes(ev)
	}
	e.bytes += added
	s.bytes += added
	// A running job's events are kept whatever the budget says; finished
	// jobs make room for them.
	s.fitBytes(0)
}

// Finish ends the job, releases its locks and starts its retention clock.
func (s *Store) Finish(ctx context.Context, jid string, state exe.JobState, msg string) error {
	return s.AppendFinish(ctx, jid, state, msg)
}

// finish ends e (Running), releases its locks, starts its retention
// clock and wakes its followers; s.mu held.
func (s *Store) finish(jid string, e *entry, state exe.JobState, msg string) {
	now := s.opts.Now()
	e.job.State, e.job.Error, e.job.EndAt = state, msg, now.Unix()
	e.expires = now.Add(s.opts.Retention)
	s.ended = append(s.ended, expiry{jid: jid, gen: e.gen, at: e.expires})
	for _, h := range e.job.Targets {
		if k := exe.LockKey(h); s.locks[k] == jid {
			delete(s.locks, k)
		}
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// AppendFinish implements exe.AppendFinisher: Append then Finish under
// one lock, with one wake-up of the job's followers. A Runner on this
// store so ends a job whose operation returned within its appendDelay
// with one call, and starts no goroutine to write its events. Events
// numbered by their writer that the job holds (Seq) are skipped.
func (s *Store) AppendFinish(_ context.Context, jid string, state exe.JobState, msg string, events ...exe.Event) error {
	if state == exe.JobRunning {
		return fmt.Errorf("memory: cannot finish a job as Running")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.running(jid)
	if err != nil {
		return err
	}
	if len(events) > 0 && events[0].Seq > 0 {
		// Numbered from events[0].Seq: those up to the last held are.
		if held := int64(len(e.events)) - events[0].Seq + 1; held > 0 {
			events = events[min(held, int64(len(events))):]
		}
	}
	s.add(e, events)
	s.finish(jid, e, state, msg)
	return nil
}

// FinishUnrun implements exe.UnrunFinisher: Append's events for the
// targets without one, then Finish as Failure, under one lock; filled is
// read under that lock too, so it is exactly the events it stored.
func (s *Store) FinishUnrun(_ context.Context, jid, msg string, fill exe.Event) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.running(jid)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(e.events))
	for _, ev := range e.events {
		seen[ev.Host] = true
	}
	var events []exe.Event
	filled := []string{}
	for _, h := range e.job.Targets {
		if !seen[h] {
			seen[h] = true
			ev := fill
			ev.Host = h
			events = append(events, ev)
			filled = append(filled, h)
		}
	}
	s.add(e, events)
	s.finish(jid, e, exe.JobFailure, msg)
	return filled, nil
}

// Delete removes a finished job.
func (s *Store) Delete(_ context.Context, jid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.get(jid)
	if err != nil {
		return err
	}
	if !e.job.Finished() {
		return exe.ErrRunning
	}
	s.drop(jid)
	// Its entry in ended is skipped harmlessly when it comes due.
	return nil
}

// Follow delivers every event after the from-th, then waits for more until
// the job ends.
func (s *Store) Follow(ctx context.Context, jid string, from int64, fn func(exe.Event) error) (*exe.Job, error) {
	return s.FollowBatches(ctx, jid, from, func(batch []exe.Event) error {
		for _, ev := range batch {
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// FollowBatches implements exe.BatchFollower: a batch is every event
// appended since the follower's last read.
func (s *Store) FollowBatches(ctx context.Context, jid string, from int64, fn func([]exe.Event) error) (*exe.Job, error) {
	// next is the number of events handed on or skipped: the Seq of the
	// last of them.
	next := max(from, 0)
	for {
		s.mu.Lock()
		e, err := s.get(jid)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		// Events are append-only and never modified, so the slice can be
		// read after the lock is released.
		var batch []exe.Event
		if next < int64(len(e.events)) {
			batch = e.events[next:]
		}
		var final *exe.Job // copied only at the end: a copy a wake-up costs
		if e.job.Finished() {
			job := e.job
			final = &job
		}
		changed := e.changed
		s.mu.Unlock()

		if len(batch) > 0 {
			// Full slice expression: fn cannot append into the store's
			// events.
			if err := fn(batch[:len(batch):len(batch)]); err != nil {
				return nil, err
			}
			next += int64(len(batch))
			continue
		}
		if final != nil {
			return final, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Bytes returns the estimated heap the kept jobs hold: every string's
// bytes and a fixed overhead per event, job and value, the quantity
// Options.MaxBytes bounds.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// MaxBytes returns the byte budget in effect (negative: none).
func (s *Store) MaxBytes() int64 { return s.opts.MaxBytes }

// Close does nothing: the store lives as long as the process.
func (s *Store) Close() error { return nil }
