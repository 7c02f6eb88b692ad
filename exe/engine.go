package exe

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/0ops/exed/internal/running"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
)

// DefaultSyncTimeout bounds a sync operation when Config.SyncTimeout is zero.
const DefaultSyncTimeout = 60 * time.Second

// DefaultMaxTimeout bounds the timeout of an async job when
// Config.MaxTimeout is zero.
const DefaultMaxTimeout = 24 * time.Hour

// DefaultCancelWait is Config.CancelWait when it is zero: longer than a
// plugin is given to report the hosts a cancel interrupted (30s).
const DefaultCancelWait = 40 * time.Second

// Config assembles an Engine. The Engine takes the parts' wiring on
// itself: it builds the Runner that executes jobs from Store, Executor and
// Tasks, and gives it to Dispatcher, so that a job runs with the very
// parts it was validated against. NewEngine refuses a Config whose parts
// do not fit together, rather than an Engine that loses jobs or panics
// on its first request.
type Config struct {
	// Store keeps the jobs. Required, unless Dispatcher is a
	// BoundDispatcher (jobstore/redis's), which brings its store: then it
	// may be nil, and if set must be that very store.
	Store JobStore
	// Executor performs the operations. Required.
	Executor Executor
	// Tasks are the tasks by type, each keyed by its Info().Type (a task
	// whose Info has no Type takes its key); may be nil.
	Tasks map[string]Task
	// Dispatcher runs async jobs. Nil: a LocalDispatcher with default
	// options (NewLocalDispatcher(LocalOptions{})). NewEngine starts it;
	// Engine.Shutdown stops it.
	Dispatcher Dispatcher
	// SyncTimeout bounds RunSync; hosts that have not answered by then are
	// reported FAILED. A request's own Timeout may shorten it, never
	// lengthen it. Zero means DefaultSyncTimeout; negative durations and
	// sizes in Config are refused.
	SyncTimeout time.Duration
	// MaxTimeout is the longest Timeout an async request may ask for;
	// longer ones are refused (ErrInvalid). Zero means DefaultMaxTimeout.
	MaxTimeout time.Duration
	// MaxForks is the most hosts at once a request's Forks may ask for:
	// the server's own bound ([runner] concurrency), which its executor
	// also applies. A larger Forks is lowered to it, not refused, as
	// forks only paces the hosts: the job records the value it ran with.
	// Zero: requests are not lowered here (the executor still bounds
	// them).
	MaxForks int
	// CancelWait bounds how long Cancel waits for the worker of a
	// cancelled job to stop its commands and finish it before ending it
	// itself. Zero means DefaultCancelWait.
	CancelWait time.Duration
	// MaxUnstoredBytes bounds a running job's events that the store has
	// not taken yet (see Runner.MaxUnstoredBytes). Zero:
	// DefaultMaxUnstoredBytes.
	MaxUnstoredBytes int64
	// Observer is told of the jobs submitted, run and ended here and of
	// every host's result (metrics: package prometheus). Nil: NoObserver.
	Observer Observer
	Logger   hclog.Logger     // nil: no logging
	Now      func() time.Time // nil: time.Now
}

// Engine is exed's entry point: it validates requests, resolves targets,
// runs sync operations, stores and dispatches async jobs, and answers job
// queries. It owns the lifecycle of what runs jobs: NewEngine starts its
// dispatcher, Shutdown stops it. It is safe for concurrent use.
type Engine struct {
	cfg Config
	log hclog.Logger

	// life ends, with cause ErrShutdown, once Shutdown has stopped the
	// work: the follows still waiting end.
	life     context.Context
	stopLife context.CancelCauseFunc

	// syncs are the sync operations under way, which Shutdown waits for
	// and then cancels. closed, set when Shutdown begins, refuses new
	// requests.
	syncs  running.Jobs
	syncWG sync.WaitGroup
	mu     sync.Mutex
	closed bool
	nsync  uint64

	// matches keeps the executor's answers while its MatchVersion says
	// they hold.
	matches matchCache
}

// NewEngine checks cfg, builds the Runner that executes jobs from its
// store, executor and tasks, and starts the dispatcher with it (the
// LocalDispatcher when cfg has none). Call Shutdown to stop it.
//
// It refuses, with an error that names the part: a missing or nil Store
// or Executor (a nil pointer in an interface counts as missing); a
// BoundDispatcher whose store is not Config.Store; a nil task, a task
// whose Info fails or whose Info().Type is not its key; a negative
// duration or size; and a dispatcher whose Start fails (one already
// started by another Engine, options it refuses).
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.SyncTimeout = orDefault(cfg.SyncTimeout, DefaultSyncTimeout)
	cfg.MaxTimeout = orDefault(cfg.MaxTimeout, DefaultMaxTimeout)
	cfg.CancelWait = orDefault(cfg.CancelWait, DefaultCancelWait)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = NoObserver{}
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Dispatcher == nil {
		cfg.Dispatcher = NewLocalDispatcher(LocalOptions{Logger: log.Named("dispatcher")})
	}
	runner := &Runner{Store: cfg.Store, Executor: cfg.Executor, Tasks: cfg.Tasks,
		Logger: log.Named("runner"), MaxUnstoredBytes: cfg.MaxUnstoredBytes, Observer: cfg.Observer}
	if err := cfg.Dispatcher.Start(runner); err != nil {
		return nil, err
	}
	life, stop := context.WithCancelCause(context.Background())
	return &Engine{cfg: cfg, log: log, life: life, stopLife: stop}, nil
}

// taskInfoTimeout bounds the Info calls with which NewEngine checks the
// tasks (a task plugin answers over its connection).
const taskInfoTimeout = 30 * time.Second

// check refuses a Config whose parts are missing or do not fit together,
// and takes a BoundDispatcher's store as the Store when there is none.
func (cfg *Config) check() error {
	if cfg.Dispatcher != nil && isNil(cfg.Dispatcher) {
		return fmt.Errorf("exe: Config.Dispatcher is a nil %T", cfg.Dispatcher)
	}
	if cfg.Store != nil && isNil(cfg.Store) {
		return fmt.Errorf("exe: Config.Store is a nil %T", cfg.Store)
	}
	if b, ok := cfg.Dispatcher.(BoundDispatcher); ok {
		own := b.JobStore()
		switch {
		case own == nil || isNil(own):
			return fmt.Errorf("exe: Config.Dispatcher (%T) has no job store", cfg.Dispatcher)
		case cfg.Store == nil:
			cfg.Store = own
		case !sameStore(cfg.Store, own):
			return fmt.Errorf("exe: Config.Store (%T) is not the store of Config.Dispatcher (%T): jobs would be stored in one and looked for in the other; give the dispatcher's own store, or leave Config.Store nil", cfg.Store, cfg.Dispatcher)
		}
	}
	switch {
	case cfg.Store == nil && cfg.Executor == nil:
		return errors.New("exe: Config needs a Store and an Executor")
	case cfg.Store == nil:
		return errors.New("exe: Config needs a Store (or a Dispatcher that brings one)")
	case cfg.Executor == nil:
		return errors.New("exe: Config needs an Executor")
	case isNil(cfg.Executor):
		return fmt.Errorf("exe: Config.Executor is a nil %T", cfg.Executor)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"SyncTimeout", int64(cfg.SyncTimeout)}, {"MaxTimeout", int64(cfg.MaxTimeout)},
		{"CancelWait", int64(cfg.CancelWait)}, {"MaxUnstoredBytes", cfg.MaxUnstoredBytes},
		{"MaxForks", int64(cfg.MaxForks)}} {
		if f.v < 0 {
			return fmt.Errorf("exe: Config.%s is negative (zero means the default)", f.name)
		}
	}
	if len(cfg.Tasks) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), taskInfoTimeout)
	defer cancel()
	for _, typ := range sortedKeys(cfg.Tasks) {
		t := cfg.Tasks[typ]
		if t == nil || isNil(t) {
			return fmt.Errorf("exe: Config.Tasks[%q] is nil", typ)
		}
		info, err := t.Info(ctx)
		if err != nil {
			return fmt.Errorf("exe: Config.Tasks[%q]: %w", typ, err)
		}
		if info.Type != "" && info.Type != typ {
			return fmt.Errorf("exe: Config.Tasks[%q] is a task of type %q: key each task by its type", typ, info.Type)
		}
	}
	return nil
}

// isNil reports whether v, a non-nil interface value, holds a nil
// pointer, whose methods would panic on its fields.
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// sameStore reports whether a and b are the same store. Stores of a type
// that cannot be compared (a struct holding a map, by value) are taken to
// differ: a BoundDispatcher's store is a pointer.
func sameStore(a, b JobStore) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if ta.Comparable() {
		return a == b
	}
	return false
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Shutdown stops the Engine. Submit and RunSync refuse new requests at
// once (ErrBusy "server is shutting down"), and Health answers so; then
// the work under way stops: jobs and sync operations get until ctx is
// done (jobs at most the dispatcher's grace period, sync operations at
// most their timeout), then are cancelled with cause ErrShutdown; give
// ctx a deadline to bound it (transport/http's ListenAndServe gives its
// grace period).
// A job cut short ends Failure "server shutdown", and a sync operation
// cut short answers its unfinished hosts FAILED "server shutdown"; queued
// jobs end as never started (or stay queued for another process, with a
// shared queue). Follows of the jobs that ended meanwhile have seen them
// end; then the follows still waiting (their jobs run elsewhere, or
// will not end here) end too, with an error that matches ErrShutdown.
// Queries (Job, Jobs, Cancel, Delete) still answer. It returns once no
// work runs here, waiting up to 10s more for work that ignores its
// cancellation. Calling it again is harmless.
//
// An HTTP front (transport/http) ends its follow streams itself when its
// server shuts down, which can be at the same time.
func (e *Engine) Shutdown(ctx context.Context) error {
	if err := e.made(); err != nil {
		return err
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	dispatched := make(chan error, 1)
	go func() { dispatched <- e.cfg.Dispatcher.Shutdown(ctx) }()
	idle := make(chan struct{})
	go func() { e.syncWG.Wait(); close(idle) }()
	if stuck := e.syncs.Drain(ctx, idle, e.cfg.SyncTimeout, ErrShutdown, func(string) {}); len(stuck) > 0 {
		e.log.Warn("sync operations did not stop after their cancel", "operations", len(stuck))
	}
	err := <-dispatched
	e.stopLife(ErrShutdown)
	return err
}

// beginSync registers a sync operation with ctx: the context it returns
// ends with ctx, or with cause ErrShutdown when Shutdown cancels it. end
// must be called when the operation has returned. ErrBusy once Shutdown
// has begun.
func (e *Engine) beginSync(ctx context.Context) (_ context.Context, end func(), _ error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, nil, Errorf(ErrBusy, "server is shutting down")
	}
	e.syncWG.Add(1)
	e.nsync++
	id := strconv.FormatUint(e.nsync, 10)
	e.mu.Unlock()
	ctx, _, done := e.syncs.Begin(ctx, id)
	return ctx, func() {
		done()
		e.syncWG.Done()
	}, nil
}

// errNotMade is what an Engine that NewEngine did not make answers.
var errNotMade = errors.New("exe: the Engine was not made by NewEngine")

// made is errNotMade for a zero (or nil) Engine, whose parts are missing.
func (e *Engine) made() error {
	if e == nil || e.life == nil {
		return errNotMade
	}
	return nil
}

// shuttingDown is ErrBusy once Shutdown has begun; errNotMade for an
// Engine that NewEngine did not make.
func (e *Engine) shuttingDown() error {
	if err := e.made(); err != nil {
		return err
	}
	if e.isClosed() {
		return Errorf(ErrBusy, "server is shutting down")
	}
	return nil
}

// isClosed reports whether Shutdown has begun.
func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Match lists the inventory hosts that pattern selects ("*" when empty).
func (e *Engine) Match(ctx context.Context, pattern string) ([]string, error) {
	hosts, err := e.MatchShared(ctx, pattern)
	if err != nil {
		return nil, err
	}
	// A kept answer is shared: the caller gets its own.
	return append(make([]string, 0, len(hosts)), hosts...), nil
}

// MatchShared is Match without the copy: the list may be the one the
// Engine keeps for the next Match of pattern (see MatchVersioner), so the
// caller must read it only, never change it. For a caller that only
// writes the list out (GET /target), of up to every host of a large
// inventory.
func (e *Engine) MatchShared(ctx context.Context, pattern string) ([]string, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	if pattern == "" {
		pattern = "*"
	}
	if !utf8.ValidString(pattern) {
		return nil, Errorf(ErrInvalid, "pattern: not valid UTF-8")
	}
	hosts, err := e.match(ctx, pattern)
	if hosts == nil && err == nil {
		hosts = []string{} // an answer of no host is [], never null
	}
	return hosts, err
}

// match asks the executor which hosts pattern selects, or answers as it
// last did while its MatchVersion says the answer holds. The slice may be
// shared: it must not be changed.
func (e *Engine) match(ctx context.Context, pattern string) ([]string, error) {
	mv, ok := e.cfg.Executor.(MatchVersioner)
	var version uint64
	if ok {
		if version, ok = mv.MatchVersion(); ok {
			if hosts, kept := e.matches.get(version, pattern); kept {
				return hosts, nil
			}
		}
	}
	hosts, err := e.cfg.Executor.Match(ctx, pattern)
	if err != nil {
		return nil, err
	}
	if ok {
		e.matches.put(version, pattern, hosts)
	}
	return hosts, nil
}

// resolve checks that every target names an inventory host and returns
// the hosts, each once, in the order the targets first name them, under
// the names Ansible gives them: "ansible 'localhost,127.0.0.1'" runs on
// one host, named localhost (the implicit localhost takes the first of
// its names; a listed localhost-like host keeps its own). A target is
// one host's name when Match of the targets' union returns it: valid
// host names contain no ',' or pattern characters (an IPv6 address's ':'
// stays within its term), so their comma-joined list is an exact union.
// A target it does not return is a name of localhost (localhostNames)
// that names one host of the union (a second Match, of the union
// intersected with it, says which), or it names no host (a
// *NoMatchError). Only these names: a group's name is no host's, even
// when the group has one host. The list returned is targets itself when
// no target was another's alias.
func (e *Engine) resolve(ctx context.Context, targets []string) ([]string, error) {
	union := strings.Join(targets, ",")
	known, err := e.match(ctx, union)
	if err != nil {
		return nil, err
	}
	if len(targets) == 1 && len(known) == 1 && known[0] == targets[0] {
		return targets, nil
	}
	set := make(map[string]bool, len(known))
	for _, h := range known {
		set[h] = true
	}
	var missing []string
	var alias map[string]string
	for _, h := range targets {
		if set[h] {
			continue
		}
		if localhostNames[h] {
			named, err := e.match(ctx, union+",&"+h)
			if err != nil && !errors.Is(err, ErrInvalid) {
				return nil, err
			}
			// An executor without Ansible's '&' refuses the pattern:
			// it has no aliases either.
			if err == nil && len(named) == 1 {
				if alias == nil {
					alias = map[string]string{}
				}
				alias[h] = named[0]
				continue
			}
		}
		missing = append(missing, h)
	}
	if len(missing) > 0 {
		return nil, &NoMatchError{Hosts: missing}
	}
	if alias == nil {
		return targets, nil
	}
	hosts := make([]string, 0, len(targets))
	seen := make(map[string]bool, len(targets))
	for _, h := range targets {
		if a, ok := alias[h]; ok {
			h = a
		}
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts, nil
}

// validateRequest asks the executor, if it is a RequestValidator, whether
// it would refuse req: a refusal now is a 400 with nothing stored, where
// the same refusal at run time would be a job that fails after a 201.
func (e *Engine) validateRequest(ctx context.Context, req Request) error {
	v, ok := e.cfg.Executor.(RequestValidator)
	if !ok {
		return nil
	}
	if s, ok := v.(ValidationScope); ok && !s.Validates(req.Operate) {
		return nil
	}
	return v.ValidateRequest(ctx, req)
}

// RunSync performs a ping, facter, service or execute operation synchronously and
// returns one event per host its targets name, keyed by the host's name:
// a host named twice (localhost and 127.0.0.1) is one, under the name
// Ansible gives it, as the job of Submit lists it in Targets (see
// Executor.Match). The request is validated as Submit does.
// When the sync timeout passes, the executor is interrupted (its context's
// deadline): the targets that had answered keep their results, those it
// stopped are FAILED as it reports them (with their partial output), and
// those with no result are FAILED "timed out"; likewise, with "server
// shutdown", when Shutdown cancels it. A timeout is not an error: only a
// request that cannot run, or an operation that failed as a whole before
// the timeout, is.
func (e *Engine) RunSync(ctx context.Context, req Request) (map[string]Event, error) {
	if err := e.shuttingDown(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Operate.Mutex() {
		return nil, Errorf(ErrInvalid, "%s runs only as an async job (POST)", req.Operate)
	}
	e.capForks(&req)
	timeout := e.cfg.SyncTimeout
	if req.Timeout > timeout {
		return nil, Errorf(ErrInvalid, "timeout: at most %s for a sync request (the server's sync timeout); submit an async job (POST) to run longer", seconds(timeout))
	}
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	if !Supports(e.cfg.Executor, req.Operate) {
		return nil, notSupported(req.Operate)
	}
	if err := e.validateRequest(ctx, req); err != nil {
		return nil, err
	}
	targets, err := e.resolve(ctx, req.Targets)
	if err != nil {
		return nil, err
	}
	req.Targets = targets
	parent := ctx
	ctx, end, err := e.beginSync(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	out := make(map[string]Event, len(req.Targets))
	err = Perform(ctx, e.cfg.Executor, nil, req, func(ev Event) {
		if ev.Host == AnnounceHost {
			return
		}
		mu.Lock()
		out[ev.Host] = ev
		mu.Unlock()
	})
	// Cut short by the timeout or the Engine's shutdown (not by the
	// caller, who is gone): every host still gets an event.
	stopped, cause := "", error(nil)
	switch {
	case parent.Err() != nil:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		stopped, cause = "timed out", context.DeadlineExceeded
	case errors.Is(context.Cause(ctx), ErrShutdown):
		stopped, cause = ErrShutdown.Error(), ErrShutdown
	}
	if err != nil && stopped == "" {
		return nil, err
	}
	if err != nil {
		// The executor's error is its interruption, which every
		// unfinished host's event says.
		e.log.Debug("sync operation cut short", "operate", req.Operate, "why", stopped, "error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range req.Targets {
		if ev, ok := out[h]; ok {
			if stopped == "" {
				continue
			}
			if ns := NotStarted(h, cause); ev.Status == ns.Status && ev.Msg == ns.Msg && ev.Name == "" {
				// API.md: a sync answer's unfinished hosts are FAILED
				// "timed out" (or "server shutdown"), started or not.
				out[h] = Event{Host: h, Status: HostFailed, Msg: stopped}
			}
			continue
		}
		if stopped != "" {
			out[h] = Event{Host: h, Status: HostFailed, Msg: stopped}
		} else {
			out[h] = Event{Host: h, Status: HostUnreachable, Msg: "no result was reported for this host"}
		}
	}
	for _, ev := range out {
		e.cfg.Observer.HostResult(req.Operate, ev.Status)
	}
	return out, nil
}

// capForks lowers a request's Forks to Config.MaxForks.
func (e *Engine) capForks(req *Request) {
	if e.cfg.MaxForks > 0 && req.Forks > e.cfg.MaxForks {
		req.Forks = e.cfg.MaxForks
	}
}

// Submit validates req (Request.Validate, the task's options schema, and
// the executor if it is a RequestValidator), resolves its targets (the
// job's Targets are the hosts they name, each once, under the names
// Ansible gives them: see Executor.Match), stores
// it as a Running job owned by UserFrom(ctx)
// (taking the per-host locks of mutex operations atomically) and dispatches
// it. The job is durable before its ID is returned. When it cannot be
// dispatched, nothing is left behind and the error (ErrBusy) is returned.
func (e *Engine) Submit(ctx context.Context, req Request) (string, error) {
	if err := e.shuttingDown(); err != nil {
		return "", err
	}
	if err := req.Validate(); err != nil {
		return "", err
	}
	if req.Operate != OpTask && !Supports(e.cfg.Executor, req.Operate) {
		return "", notSupported(req.Operate)
	}
	if req.Timeout > e.cfg.MaxTimeout {
		return "", Errorf(ErrInvalid, "timeout: at most %s (the server's maximum)", seconds(e.cfg.MaxTimeout))
	}
	e.capForks(&req)
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
	if err := e.validateRequest(ctx, req); err != nil {
		return "", err
	}
	targets, err := e.resolve(ctx, req.Targets)
	if err != nil {
		return "", err
	}
	req.Targets = targets
	job := &Job{JID: uuid.NewString(), State: JobRunning, StartAt: e.cfg.Now().Unix(), Request: req, User: UserFrom(ctx)}
	if cd, ok := e.cfg.Dispatcher.(StoringDispatcher); ok {
		if err := cd.CreateAndDispatch(ctx, job); err != nil {
			return "", err
		}
		e.cfg.Observer.JobSubmitted(req.Operate)
		return job.JID, nil
	}
	if err := e.cfg.Store.Create(ctx, job); err != nil {
		return "", err
	}
	if err := e.cfg.Dispatcher.Dispatch(ctx, job.JID); err != nil {
		// Leave nothing behind: the client is told the job was not taken.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		if ferr := e.cfg.Store.Finish(wctx, job.JID, JobFailure, "not dispatched: "+PublicMessage(err)); ferr == nil {
			_ = e.cfg.Store.Delete(wctx, job.JID)
		}
		return "", err
	}
	e.cfg.Observer.JobSubmitted(req.Operate)
	return job.JID, nil
}

// Job returns a job; with outputs, its events grouped by host.
func (e *Engine) Job(ctx context.Context, jid string, outputs bool) (*Job, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	return e.cfg.Store.Get(ctx, jid, outputs)
}

// Jobs lists job IDs, newest first.
func (e *Engine) Jobs(ctx context.Context) ([]string, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	ids, err := e.cfg.Store.List(ctx)
	if ids == nil && err == nil {
		ids = []string{}
	}
	return ids, err
}

// JobDetails lists jobs (without outputs), newest first. Jobs that expire
// while the list is built are left out.
func (e *Engine) JobDetails(ctx context.Context) ([]*Job, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
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
	if err := e.made(); err != nil {
		return err
	}
	return e.cfg.Store.Delete(ctx, jid)
}

// Cancel ends a running job as Failure "cancelled" and returns it ended.
// Every target ends with an event: its result if it finished, FAILED
// "cancelled" with its partial output if it was interrupted, SKIPPED
// "cancelled before start" if it never started.
//
// A job a worker runs is interrupted through the dispatcher, and its
// Runner stores those events and finishes it, which releases its locks
// once its commands have been stopped; Cancel waits for that, up to
// Config.CancelWait. A job no worker runs (still queued, or its worker is
// gone), or one whose worker did not finish it in time, is ended here:
// its targets without an event get SKIPPED "cancelled before start" (or,
// if a worker had started it, FAILED saying the command may still run).
// A store whose workers can be cut off from it keeps the locks of a job
// so ended while its worker may still run it (see UnrunFinisher).
// ErrFinished when the job had already ended.
func (e *Engine) Cancel(ctx context.Context, jid string) (*Job, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	job, err := e.cfg.Store.Get(ctx, jid, false)
	if err != nil {
		return nil, err
	}
	if job.Finished() {
		return nil, ErrFinished
	}
	// started: a worker started the job; running: one still holds it, and
	// is asked to stop it.
	started, running := false, false
	switch err := e.cfg.Dispatcher.Cancel(ctx, jid); {
	case err == nil:
		started, running = true, true
	case errors.Is(err, ErrWorkerGone):
		started = true
	case !errors.Is(err, ErrNotRunning):
		return nil, err
	}
	// The wait and the ending below outlive a client that leaves: the job
	// must not stay Running because its canceller went away.
	wctx := context.WithoutCancel(ctx)
	if running {
		if job, ok := e.waitFinished(wctx, jid, e.cfg.CancelWait); ok {
			return job, nil
		}
		e.log.Warn("cancelled job's worker did not finish it in time; ending it here", "jid", jid, "waited", e.cfg.CancelWait)
	}
	last := func(host string) Event { return NotStarted(host, ErrCancelled) }
	if started {
		last = func(host string) Event {
			return Event{Host: host, Status: HostFailed,
				Msg: "cancelled; its worker did not report how the command ended, so it may still run"}
		}
	}
	sctx, cancel := context.WithTimeout(wctx, storeTimeout)
	defer cancel()
	ended, err := endUnrun(sctx, e.cfg.Store, e.cfg.Observer, jid, ErrCancelled, last)
	if err != nil {
		return nil, err
	}
	if ended != nil {
		logJobEnded(e.log.Named("runner"), "job ended", ended, JobFailure, ErrCancelled.Error(), started, -1)
	}
	if !started {
		// A worker that took the job between the check and the end stops
		// it now (it would also stop at its first event).
		_ = e.cfg.Dispatcher.Cancel(sctx, jid)
	}
	return e.cfg.Store.Get(sctx, jid, false)
}

// waitFinished polls the job until it has ended, for up to d.
func (e *Engine) waitFinished(ctx context.Context, jid string, d time.Duration) (*Job, bool) {
	deadline := time.Now().Add(d)
	delay := 5 * time.Millisecond
	for {
		job, err := e.cfg.Store.Get(ctx, jid, false)
		if err == nil && job.Finished() {
			return job, true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, false
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// Follow calls fn with every event of the job from the first, blocking for
// new ones until the job ends, and returns the final job. It stops early
// with ctx's error, with fn's error, or, once Shutdown has stopped the
// work here and the job still has not ended, with an error that matches
// ErrShutdown.
func (e *Engine) Follow(ctx context.Context, jid string, fn func(Event) error) (*Job, error) {
	return e.FollowFrom(ctx, jid, 0, fn)
}

// FollowFrom is Follow resumed after the event whose Seq is from: fn gets
// only the events with a greater Seq (Event.Seq counts from 1, so 0 is
// every event). A client that saw events up to Seq n and lost its stream
// follows again from n, and sees nothing twice and nothing skipped.
// Skipped events cost the store no decoding (JobStore.Follow).
func (e *Engine) FollowFrom(ctx context.Context, jid string, from int64, fn func(Event) error) (*Job, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(e.life, func() { cancel(ErrShutdown) })
	defer stop()
	job, err := e.cfg.Store.Follow(ctx, jid, max(from, 0), fn)
	if err != nil && errors.Is(context.Cause(ctx), ErrShutdown) {
		return job, fmt.Errorf("follow ended: %w", ErrShutdown)
	}
	return job, err
}

// FollowBatches is FollowFrom with fn getting the events in the batches
// the store read them in (one event each when the store is not a
// BatchFollower): every event with a Seq above from once, in order, in
// batches of at least one. A follower that writes to a socket writes a
// batch at once instead of an event at a time. fn must neither modify
// nor keep the slice after it returns.
func (e *Engine) FollowBatches(ctx context.Context, jid string, from int64, fn func([]Event) error) (*Job, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(e.life, func() { cancel(ErrShutdown) })
	defer stop()
	var job *Job
	var err error
	if bf, ok := e.cfg.Store.(BatchFollower); ok {
		job, err = bf.FollowBatches(ctx, jid, max(from, 0), fn)
	} else {
		var one [1]Event
		job, err = e.cfg.Store.Follow(ctx, jid, max(from, 0), func(ev Event) error {
			one[0] = ev
			return fn(one[:])
		})
	}
	if err != nil && errors.Is(context.Cause(ctx), ErrShutdown) {
		return job, fmt.Errorf("follow ended: %w", ErrShutdown)
	}
	return job, err
}

// TaskInfos describes every task, sorted by type.
func (e *Engine) TaskInfos(ctx context.Context) ([]TaskInfo, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
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
// implement HealthChecker, whether they can serve. A part that cannot makes
// it an ErrUnavailable; when every part serves but one says ErrDegraded
// (it works, but not all of its work gets done), it is that ErrDegraded.
// The parts' details go to the log; the error holds their public text.
// Once Shutdown has begun it is ErrUnavailable "server is shutting down",
// which also matches ErrShutdown, whatever the parts say.
func (e *Engine) Health(ctx context.Context) error {
	if err := e.made(); err != nil {
		return err
	}
	if e.isClosed() {
		return WithCause(ErrUnavailable, ErrShutdown, "server is shutting down")
	}
	parts := []struct {
		name string
		part any
	}{{"store", e.cfg.Store}, {"dispatcher", e.cfg.Dispatcher}, {"executor", e.cfg.Executor}}
	var degraded error
	for _, p := range parts {
		if hc, ok := p.part.(HealthChecker); ok {
			err := hc.Health(ctx)
			switch {
			case err == nil:
			case errors.Is(err, ErrDegraded):
				if degraded == nil {
					degraded = Errorf(ErrDegraded, "%s: %s", p.name, PublicMessage(err))
				}
			default:
				e.log.Warn("health check failed", "part", p.name, "error", err)
				return Errorf(ErrUnavailable, "%s: %s", p.name, PublicMessage(err))
			}
		}
	}
	return degraded
}

// seconds writes d as the API counts it: "90 seconds", "1.5 seconds".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " seconds"
}
