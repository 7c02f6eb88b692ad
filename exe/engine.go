package exe

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
)

// DefaultSyncTimeout bounds a sync operation when Config.SyncTimeout is zero.
const DefaultSyncTimeout = 60 * time.Second

// Config assembles an Engine.
type Config struct {
	Store      JobStore        // required
	Dispatcher Dispatcher      // required for Submit
	Executor   Executor        // required
	Tasks      map[string]Task // by type; may be nil
	// SyncTimeout bounds Run; hosts that have not answered by then are
	// reported FAILED. Zero means DefaultSyncTimeout.
	SyncTimeout time.Duration
	Logger      hclog.Logger     // nil: no logging
	Now         func() time.Time // nil: time.Now
}

// Engine is exed's entry point: it validates requests, resolves targets,
// runs sync operations, stores and dispatches async jobs, and answers job
// queries. It is safe for concurrent use.
type Engine struct {
	cfg Config
	log hclog.Logger
}

// NewEngine checks cfg and returns an Engine.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Executor == nil {
		return nil, errors.New("exe: Config needs a Store and an Executor")
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = DefaultSyncTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Engine{cfg: cfg, log: log}, nil
}

// Match lists the inventory hosts that pattern selects ("*" when empty).
func (e *Engine) Match(ctx context.Context, pattern string) ([]string, error) {
	if pattern == "" {
		pattern = "*"
	}
	hosts, err := e.cfg.Executor.Match(ctx, pattern)
	if err != nil {
		return nil, err
	}
	if hosts == nil {
		hosts = []string{}
	}
	return hosts, nil
}

// resolve checks that every target is an inventory host, in one Match call:
// valid host names contain no ',' or pattern characters (an IPv6 address's
// ':' stays within its term), so their comma-joined list is an exact union.
func (e *Engine) resolve(ctx context.Context, targets []string) error {
	known, err := e.cfg.Executor.Match(ctx, strings.Join(targets, ","))
	if err != nil {
		return err
	}
	set := make(map[string]bool, len(known))
	for _, h := range known {
		set[h] = true
	}
	var missing []string
	for _, h := range targets {
		if !set[h] {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return &NoMatchError{Hosts: missing}
	}
	return nil
}

// Run performs a ping, facter, service or execute operation synchronously and
// returns one event per target. Targets that have not answered within the
// sync timeout are reported FAILED.
func (e *Engine) Run(ctx context.Context, req Request) (map[string]Event, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Operate.Mutex() {
		return nil, Errorf(ErrInvalid, "%s runs only as an async job (POST)", req.Operate)
	}
	if err := e.resolve(ctx, req.Targets); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.SyncTimeout)
	defer cancel()
	var mu sync.Mutex
	out := make(map[string]Event, len(req.Targets))
	err := Perform(ctx, e.cfg.Executor, nil, req, func(ev Event) {
		if ev.Host == AnnounceHost {
			return
		}
		mu.Lock()
		out[ev.Host] = ev
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range req.Targets {
		if _, ok := out[h]; !ok {
			out[h] = Event{Host: h, Status: Failed, Msg: fmt.Sprintf("no result within %s", e.cfg.SyncTimeout)}
		}
	}
	return out, nil
}

// Submit validates req, resolves its targets, stores it as a Running job
// (taking the per-host locks of mutex operations atomically) and dispatches
// it. The job is durable before its ID is returned. When it cannot be
// dispatched, nothing is left behind and the error (ErrBusy) is returned.
func (e *Engine) Submit(ctx context.Context, req Request) (string, error) {
	if err := req.Validate(); err != nil {
		return "", err
	}
	if e.cfg.Dispatcher == nil {
		return "", errors.New("exe: engine has no dispatcher")
	}
	if req.Operate == OpTask {
		task, ok := e.cfg.Tasks[req.Task.Type]
		if !ok {
			return "", Errorf(ErrInvalid, "tasktype: unknown task type %q", req.Task.Type)
		}
		info, err := task.Info(ctx)
		if err != nil {
			return "", err
		}
		opts, err := info.Options.Validate(req.Task.Options)
		if err != nil {
			return "", err
		}
		req.Task.Options = opts
	}
	if err := e.resolve(ctx, req.Targets); err != nil {
		return "", err
	}
	job := &Job{JID: uuid.NewString(), State: JobRunning, StartAt: e.cfg.Now().Unix(), Request: req}
	if cd, ok := e.cfg.Dispatcher.(CreateDispatcher); ok {
		if err := cd.CreateAndDispatch(ctx, job); err != nil {
			return "", err
		}
		return job.JID, nil
	}
	if err := e.cfg.Store.Create(ctx, job); err != nil {
		return "", err
	}
	if err := e.cfg.Dispatcher.Dispatch(ctx, job.JID); err != nil {
		// Leave nothing behind: the client is told the job was not taken.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		if ferr := e.cfg.Store.Finish(wctx, job.JID, JobFailure, "not dispatched: "+err.Error()); ferr == nil {
			_ = e.cfg.Store.Delete(wctx, job.JID)
		}
		return "", err
	}
	return job.JID, nil
}

// Job returns a job; with outputs, its events grouped by host.
func (e *Engine) Job(ctx context.Context, jid string, outputs bool) (*Job, error) {
	return e.cfg.Store.Get(ctx, jid, outputs)
}

// Jobs lists job IDs, newest first.
func (e *Engine) Jobs(ctx context.Context) ([]string, error) {
	ids, err := e.cfg.Store.List(ctx)
	if ids == nil && err == nil {
		ids = []string{}
	}
	return ids, err
}

// JobDetails lists jobs (without outputs), newest first. Jobs that expire
// while the list is built are left out.
func (e *Engine) JobDetails(ctx context.Context) ([]*Job, error) {
	ids, err := e.cfg.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	jobs := make([]*Job, 0, len(ids))
	for _, id := range ids {
		j, err := e.cfg.Store.Get(ctx, id, false)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// Delete removes a finished job: ErrRunning while it runs.
func (e *Engine) Delete(ctx context.Context, jid string) error {
	return e.cfg.Store.Delete(ctx, jid)
}

// Cancel ends a running job as Failure "cancelled", which releases its
// locks at once, then tells the dispatcher to interrupt its executor.
// ErrFinished when the job had already ended.
func (e *Engine) Cancel(ctx context.Context, jid string) (*Job, error) {
	if _, err := e.cfg.Store.Get(ctx, jid, false); err != nil {
		return nil, err
	}
	if err := e.cfg.Store.Finish(ctx, jid, JobFailure, ErrCancelled.Error()); err != nil {
		return nil, err
	}
	if e.cfg.Dispatcher != nil {
		if err := e.cfg.Dispatcher.Cancel(ctx, jid); err != nil {
			e.log.Warn("job cancelled, but its worker could not be told", "jid", jid, "error", err)
		}
	}
	return e.cfg.Store.Get(ctx, jid, false)
}

// Follow calls fn with every event of the job from the first, blocking for
// new ones until the job ends, and returns the final job.
func (e *Engine) Follow(ctx context.Context, jid string, fn func(Event) error) (*Job, error) {
	return e.cfg.Store.Follow(ctx, jid, fn)
}

// TaskInfos describes every task, sorted by type.
func (e *Engine) TaskInfos(ctx context.Context) ([]TaskInfo, error) {
	infos := make([]TaskInfo, 0, len(e.cfg.Tasks))
	for typ, t := range e.cfg.Tasks {
		info, err := t.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", typ, err)
		}
		if info.Type == "" {
			info.Type = typ
		}
		infos = append(infos, info)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Type < infos[j].Type })
	return infos, nil
}

// Health asks the store, the dispatcher and the executor, those of them that
// implement HealthChecker, whether they can serve.
func (e *Engine) Health(ctx context.Context) error {
	parts := []struct {
		name string
		part any
	}{{"store", e.cfg.Store}, {"dispatcher", e.cfg.Dispatcher}, {"executor", e.cfg.Executor}}
	for _, p := range parts {
		if hc, ok := p.part.(HealthChecker); ok {
			if err := hc.Health(ctx); err != nil {
				return Errorf(ErrUnavailable, "%s: %s", p.name, PublicMessage(err))
			}
		}
	}
	return nil
}
