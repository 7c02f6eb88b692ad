// Package running keeps the jobs that a dispatcher's workers run, each
// with the cancel of its context, and the shutdown that exed's
// dispatchers share: running jobs get a grace period, then are cancelled,
// and those that still do not return are failed by the caller, so that no
// job stays Running behind a process that stopped.
package running

import (
	"context"
	"sort"
	"sync"
	"time"
)

// AfterGrace bounds how long Drain waits for cancelled jobs to return
// before it hands them to fail: time for executors to stop their commands
// (sshnative's default kill_grace twice, plus round trips) and report
// them.
const AfterGrace = 10 * time.Second

// Jobs are the jobs running in one process's workers, by job ID.
type Jobs struct {
	base  context.Context
	abort context.CancelCauseFunc // cancels every job's context

	mu      sync.Mutex
	cancels map[string]context.CancelCauseFunc
}

// New returns an empty set.
func New() *Jobs {
	base, abort := context.WithCancelCause(context.Background())
	return &Jobs{base: base, abort: abort, cancels: map[string]context.CancelCauseFunc{}}
}

// Begin marks jid running and returns the context to run it in, which
// Cancel(jid) and Drain's end of grace cancel, and the cancel of that
// context (for the worker's own causes, such as a lost lease). end must
// be called once the run has returned.
func (j *Jobs) Begin(jid string) (ctx context.Context, cancel context.CancelCauseFunc, end func()) {
	ctx, cancel = context.WithCancelCause(j.base)
	j.mu.Lock()
	j.cancels[jid] = cancel
	j.mu.Unlock()
	return ctx, cancel, func() {
		j.mu.Lock()
		delete(j.cancels, jid)
		j.mu.Unlock()
		cancel(nil)
	}
}

// Cancel cancels jid's run with cause; false when jid does not run here.
func (j *Jobs) Cancel(jid string, cause error) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	cancel := j.cancels[jid]
	if cancel != nil {
		cancel(cause)
	}
	return cancel != nil
}

// IDs lists the running jobs, sorted.
func (j *Jobs) IDs() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	ids := make([]string, 0, len(j.cancels))
	for jid := range j.cancels {
		ids = append(ids, jid)
	}
	sort.Strings(ids)
	return ids
}

// Drain is the end of a shutdown whose workers take no more jobs: it
// waits until idle is closed (every worker has returned) for up to grace,
// or until ctx ends if sooner; then it cancels every running job with
// cause and waits for idle up to AfterGrace more; the jobs still running
// then (their executor ignores cancellation) are passed to fail, which
// must end them in the store. It returns their IDs.
func (j *Jobs) Drain(ctx context.Context, idle <-chan struct{}, grace time.Duration, cause error, fail func(jid string)) []string {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-idle:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	j.abort(cause)
	after := time.NewTimer(AfterGrace)
	defer after.Stop()
	select {
	case <-idle:
		return nil
	case <-after.C:
	}
	stuck := j.IDs()
	for _, jid := range stuck {
		fail(jid)
	}
	return stuck
}
