// Package memory is an in-process exe.JobStore: the embedded default, and the
// store tests use. It is safe for concurrent use and bounds its memory: a
// finished job is kept for a retention period, and at most MaxJobs jobs are
// kept at once (the oldest finished ones make room for new ones).
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
	// Retention is how long a finished job is kept. Zero: DefaultRetention.
	Retention time.Duration
	// MaxJobs caps how many jobs are kept. When full, the oldest finished
	// job is dropped; when every job is running, Create fails with
	// exe.ErrBusy. Zero: DefaultMaxJobs.
	MaxJobs int
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
	locks map[string]string // host -> jid of the running mutex job holding it
}

type entry struct {
	job     exe.Job // ReturnData always nil here
	events  []exe.Event
	expires time.Time // zero while running
	// changed is closed and replaced on every append and on finish, waking
	// followers.
	changed chan struct{}
}

type expiry struct {
	jid string
	at  time.Time
}

var _ exe.JobStore = (*Store)(nil)

// New returns an empty Store.
func New(opts Options) *Store {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = DefaultMaxJobs
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
		s.drop(s.ended[i].jid)
	}
	if i > 0 {
		s.ended = append(s.ended[:0], s.ended[i:]...)
	}
}

// drop removes a job; its jid stays in order until compaction. Callers hold mu.
func (s *Store) drop(jid string) {
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
			if holder, ok := s.locks[h]; ok {
				return &exe.ConflictError{Host: h, JID: holder}
			}
		}
	}
	for len(s.jobs) >= s.opts.MaxJobs {
		if len(s.ended) == 0 {
			return exe.Errorf(exe.ErrBusy, "job table full: %d jobs are running", len(s.jobs))
		}
		s.drop(s.ended[0].jid)
		s.ended = s.ended[1:]
	}
	if job.Operate.Mutex() {
		for _, h := range job.Targets {
			s.locks[h] = job.JID
		}
	}
	stored := *job
	stored.State = exe.JobRunning
	stored.EndAt = 0
	stored.Error = ""
	stored.ReturnData = nil
	stored.Targets = append([]string(nil), job.Targets...)
	s.jobs[job.JID] = &entry{job: stored, changed: make(chan struct{})}
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
	e, err := s.get(jid)
	if err != nil {
		return err
	}
	if e.job.Finished() {
		return exe.ErrFinished
	}
	for _, ev := range events {
		ev.Seq = int64(len(e.events) + 1)
		e.events = append(e.events, ev)
	}
	close(e.changed)
	e.changed = make(chan struct{})
	return nil
}

// Finish ends the job, releases its locks and starts its retention clock.
func (s *Store) Finish(_ context.Context, jid string, state exe.JobState, msg string) error {
	if state == exe.JobRunning {
		return fmt.Errorf("memory: cannot finish a job as Running")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.get(jid)
	if err != nil {
		return err
	}
	if e.job.Finished() {
		return exe.ErrFinished
	}
	now := s.opts.Now()
	e.job.State, e.job.Error, e.job.EndAt = state, msg, now.Unix()
	e.expires = now.Add(s.opts.Retention)
	s.ended = append(s.ended, expiry{jid: jid, at: e.expires})
	for _, h := range e.job.Targets {
		if s.locks[h] == jid {
			delete(s.locks, h)
		}
	}
	close(e.changed)
	e.changed = make(chan struct{})
	return nil
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

// Follow delivers every event from the first, then waits for more until the
// job ends.
func (s *Store) Follow(ctx context.Context, jid string, fn func(exe.Event) error) (*exe.Job, error) {
	next := 0
	for {
		s.mu.Lock()
		e, err := s.get(jid)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		// Events are append-only and never modified, so the slice can be
		// read after the lock is released.
		batch := e.events[next:]
		finished := e.job.Finished()
		job := e.job
		changed := e.changed
		s.mu.Unlock()

		for _, ev := range batch {
			if err := fn(ev); err != nil {
				return nil, err
			}
			next++
		}
		if len(batch) > 0 {
			continue
		}
		if finished {
			return &job, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close does nothing: the store lives as long as the process.
func (s *Store) Close() error { return nil }
