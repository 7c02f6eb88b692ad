package exe

import (
	"context"
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
)

// storeTimeout bounds each store write a Runner makes on behalf of a job
// whose own context may already be cancelled.
const storeTimeout = 10 * time.Second

// Runner executes stored jobs: it calls the executor (or task), appends every
// event to the store as it arrives, and finishes the job with its outcome.
// Dispatchers' workers call Run; a Runner is safe for concurrent use.
type Runner struct {
	Store    JobStore
	Executor Executor
	Tasks    map[string]Task // by type
	Logger   hclog.Logger    // nil: no logging
}

// Run executes job jid to completion. A job that is no longer Running (it
// was cancelled while queued) is left alone. When ctx is cancelled with a
// cause (ErrCancelled, ErrShutdown, ErrWorkerLost, ...), the job fails with
// that cause as its error.
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
	rec := &recorder{runner: r, jid: jid, stop: stop, seen: map[string]bool{}, failed: map[string]bool{}}
	opErr := Perform(ctx, r.Executor, r.Tasks, job.Request, rec.emit)
	state, msg := rec.outcome(ctx, job.Targets, opErr)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := r.Store.Finish(wctx, jid, state, msg); err != nil && !errors.Is(err, ErrFinished) {
		return fmt.Errorf("finish job %s: %w", jid, err)
	}
	return nil
}

// Fail finishes a job that will not run (queued at shutdown, lost worker)
// as Failure with msg. A job that already ended is left as it is.
func (r *Runner) Fail(ctx context.Context, jid, msg string) error {
	err := r.Store.Finish(ctx, jid, JobFailure, msg)
	if errors.Is(err, ErrFinished) {
		return nil
	}
	return err
}

func (r *Runner) logger() hclog.Logger {
	if r.Logger == nil {
		return hclog.NewNullLogger()
	}
	return r.Logger
}

// recorder appends a running job's events and keeps what its outcome needs.
type recorder struct {
	runner *Runner
	jid    string
	stop   context.CancelCauseFunc

	mu     sync.Mutex
	seen   map[string]bool
	failed map[string]bool
	lost   int
}

func (rc *recorder) emit(ev Event) {
	rc.mu.Lock()
	if ev.Host != AnnounceHost {
		rc.seen[ev.Host] = true
		if ev.Status.Failure() {
			rc.failed[ev.Host] = true
		}
	}
	rc.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := rc.runner.Store.Append(ctx, rc.jid, ev)
	switch {
	case err == nil:
	case errors.Is(err, ErrFinished):
		// The job ended under us (cancelled, lease lost): stop the work.
		rc.stop(ErrCancelled)
	default:
		rc.mu.Lock()
		rc.lost++
		rc.mu.Unlock()
		rc.runner.logger().Error("could not store event", "jid", rc.jid, "host", ev.Host, "error", err)
	}
}

// outcome applies API.md's rules: Done only if every target ended without
// FAILED/UNREACHABLE; a target that reported nothing counts as failed.
func (rc *recorder) outcome(ctx context.Context, targets []string, opErr error) (JobState, string) {
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if cause == nil || errors.Is(cause, context.Canceled) {
			cause = ErrCancelled
		}
		return JobFailure, cause.Error()
	}
	if opErr != nil {
		// A plugin's error may quote what a host printed.
		return JobFailure, ToValidUTF8(opErr.Error())
	}
	var silent []string
	rc.mu.Lock()
	for _, h := range targets {
		if !rc.seen[h] {
			silent = append(silent, h)
		}
	}
	rc.mu.Unlock()
	sort.Strings(silent)
	for _, h := range silent {
		rc.emit(Event{Host: h, Status: Unreachable, Msg: "no result was reported for this host"})
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.lost > 0 {
		return JobFailure, fmt.Sprintf("%d events could not be stored", rc.lost)
	}
	if n := len(rc.failed); n > 0 {
		return JobFailure, fmt.Sprintf("%d of %d hosts failed", n, len(targets))
	}
	return JobDone, ""
}

// Perform runs req's operation on its targets with exec, sending events to
// emit. Tasks are looked up in tasks by type. It is the one place that maps
// an operation to an Executor method, shared by sync runs and workers.
// Every event reaches emit with valid UTF-8 strings (Event.ToValidUTF8):
// what a host prints never fails what carries it on.
func Perform(ctx context.Context, exec Executor, tasks map[string]Task, req Request, emit Emit) error {
	raw := emit
	emit = func(ev Event) { raw(ev.ToValidUTF8()) }
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
