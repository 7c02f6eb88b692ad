// Package running keeps the work a process runs (the jobs of a
// dispatcher's workers, a plugin's operations, an Engine's sync
// operations), each by its ID with the cancel of its context, and the
// shutdown that exed's dispatchers share: running work gets a grace
// period, then is cancelled, and what still does not return is failed by
// the caller, so that no job stays Running behind a process that stopped.
package running

import (
	"context"
	"sort"
	"sync"
	"time"
)

// AfterGrace bounds how long Drain waits for cancelled work to return
// before it hands it to fail: time for executors to stop their commands
// (sshnative's default kill_grace twice, plus round trips) and report
// them.
const AfterGrace = 10 * time.Second

// Jobs are the work running in one process, by ID. The zero value is
// ready to use.
type Jobs struct {
	once  sync.Once
	abort context.Context // cancelled by Drain at the end of grace
	stop  context.CancelCauseFunc

	mu      sync.Mutex
	cancels map[string]context.CancelCauseFunc
}

func (j *Jobs) init() {
	j.once.Do(func() {
		j.abort, j.stop = context.WithCancelCause(context.Background())
		j.cancels = map[string]context.CancelCauseFunc{}
	})
}

// Begin marks id running and returns the context to run it in: a child
// of parent that Cancel(id) and the end of Drain's grace cancel, the
// cancel of that context (for the caller's own causes, such as a lost
// lease), and end, to call once the work has returned. An empty id (work
// nobody cancels by ID) is not kept.
func (j *Jobs) Begin(parent context.Context, id string) (ctx context.Context, cancel context.CancelCauseFunc, end func()) {
	j.init()
	ctx, cancel = context.WithCancelCause(parent)
	unwatch := context.AfterFunc(j.abort, func() { cancel(context.Cause(j.abort)) })
	if id != "" {
		j.mu.Lock()
		j.cancels[id] = cancel
		j.mu.Unlock()
	}
	return ctx, cancel, func() {
		unwatch()
		if id != "" {
			j.mu.Lock()
			delete(j.cancels, id)
			j.mu.Unlock()
		}
		cancel(nil)
	}
}

// Cancel cancels id's work with cause; false when no work of that ID runs.
func (j *Jobs) Cancel(id string, cause error) bool {
	j.init()
	j.mu.Lock()
	defer j.mu.Unlock()
	cancel := j.cancels[id]
	if cancel != nil {
		cancel(cause)
	}
	return cancel != nil
}

// Has reports whether work of that ID runs.
func (j *Jobs) Has(id string) bool {
	j.init()
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cancels[id] != nil
}

// IDs lists the running work, sorted.
func (j *Jobs) IDs() []string {
	j.init()
	j.mu.Lock()
	defer j.mu.Unlock()
	ids := make([]string, 0, len(j.cancels))
	for id := range j.cancels {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Drain is the end of a shutdown whose workers take no more work: it
// waits until idle is closed (every worker has returned) for up to grace,
// or until ctx ends if sooner; then it cancels all running work with
// cause and waits for idle up to AfterGrace more; the work still running
// then (its executor ignores cancellation) is passed to fail, which must
// end it (in the store, for a job). It returns those IDs.
func (j *Jobs) Drain(ctx context.Context, idle <-chan struct{}, grace time.Duration, cause error, fail func(id string)) []string {
	j.init()
	if waitIdle(ctx, idle, grace) {
		return nil
	}
	j.stop(cause)
	if waitIdle(context.Background(), idle, AfterGrace) {
		return nil
	}
	stuck := j.IDs()
	for _, id := range stuck {
		fail(id)
	}
	return stuck
}

// waitIdle reports whether idle was closed within d, before ctx ended.
func waitIdle(ctx context.Context, idle <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
