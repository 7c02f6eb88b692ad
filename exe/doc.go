// Package exe holds exed's domain: jobs and their per-host events, the
// operations an executor performs, the interfaces that the rest of the
// module implements (Executor, Task, JobStore, Dispatcher), and the Engine
// that ties them together.
//
// The package depends only on the standard library, hclog and uuid, so
// that executor and task plugins, stores and transports can all import it.
//
// # Embedding
//
// An Engine is built from a job store, an executor and the tasks by type:
//
//	engine, err := exe.NewEngine(exe.Config{
//		Store:    memory.New(memory.Options{}), // or jobstore/redis
//		Executor: myExecutor,                   // or a plugin: loader.Load, executor.Start
//		Tasks:    plugins.Tasks,                // task plugins: loader.Load
//	})
//	defer engine.Shutdown(ctx)
//
// NewEngine is the one place that wires them: it builds the Runner that
// executes jobs from that store, executor and tasks, and starts the
// Dispatcher with it, so a job always runs with what it was validated
// against. Without Config.Dispatcher, jobs run in this process
// (LocalDispatcher, with default bounds; NewLocalDispatcher sets them);
// jobstore/redis's Dispatcher runs them across processes. A dispatcher
// that keeps its queue beside a store of its own (a BoundDispatcher, as
// Redis's is) brings that store: Config.Store may then be nil, and
// NewEngine refuses any other, so that no job is stored in one place and
// looked for in another. NewEngine refuses, naming it, whatever would
// not work: a nil part, a task keyed by another type than its Info's, a
// negative duration.
//
// transport/http serves the Engine as exed's HTTP API, on a mux of one's
// own; examples/embed is a whole service in a few lines.
//
// # Operations and jobs
//
// Sync operations (Engine.RunSync: ping, facter, service, execute) go
// straight to the executor, bounded by Config.SyncTimeout, and answer one
// Event per target. Async ones (Engine.Submit: every operation; deploy and
// tasks run only this way) are stored as a Job before their ID is returned,
// then
// dispatched: a worker's Runner calls the executor (or task), appends
// every Event to the store as it arrives (on an AppendFinisher, within
// 10ms, or with the outcome when the job ends sooner), and finishes the
// job with its outcome, Done only when no host FAILED or was UNREACHABLE. Deploy and
// task jobs hold their hosts: a second one on a held host is a conflict.
// Engine.Follow streams a job's events from the first until it ends
// (Engine.FollowFrom resumes after a given event);
// Engine.Cancel interrupts it, and every host still ends with an event.
//
// # Writing an executor
//
// An Executor performs operations on hosts. Each operation fans out over
// its hosts and calls emit once per host as soon as that host is done
// (HostOK, HostChanged, HostFailed with the exit status and output,
// HostUnreachable with the reason), honours ctx (a cancel, a timeout, a
// shutdown: report the hosts it interrupted FAILED with what they printed;
// the Runner reports the ones never started SKIPPED), and returns an error
// only when the operation as a whole could not run. Match resolves host
// patterns; "a,b" must mean the union of a and b.
//
// An executor that does not perform every operation embeds Only, which
// lists the ones it has and answers the others with ErrNotSupported, so
// that requests for them are refused with 501 before anything is stored:
//
//	type pinger struct {
//		exe.Only // exe.Only{exe.OpPing}
//		inv *inventory.Inventory // inventory.Static("web[1:9]")
//	}
//
//	func (p *pinger) Match(_ context.Context, pattern string) ([]string, error) { return p.inv.Match(pattern) }
//	func (p *pinger) Ping(ctx context.Context, hosts []string, emit exe.Emit) error { ... }
//
// It may also implement RequestValidator (refuse a request before it is
// stored), HealthChecker (for /healthz) and, as a plugin, the executor
// package's Configurer. executortest.Run checks an executor against these
// rules, in process and through the plugin protocol; executor.Serve runs
// it as a plugin process.
//
// # Writing a task
//
// A Task (a rolling restart) composes executor calls: Info describes it
// and the options it takes (a Schema the Engine validates and fills in
// before the job is stored), and Run drives the executor it is given on
// the job's hosts, emitting events as an executor does (events for
// AnnounceHost mark its steps). task.Serve runs it as a plugin.
//
// # Errors
//
// ErrorKinds is the one table of what can go wrong with a request: the
// sentinel errors (ErrInvalid, ErrNotFound, ErrConflict, ErrBusy,
// ErrUnavailable, ...) with the HTTP status each is answered with and the
// reason it crosses the plugin protocol with, so that errors.Is still
// holds on the host's side. Errorf gives a sentinel a
// message for the caller; WithCause keeps an underlying error (an address,
// a server's reply) for the log only. PublicMessage is what a client may
// be shown: the message of a kind's error, and a generic text for
// anything else, which transports log in full instead.
//
// # Observing
//
// Config.Observer is told of every job submitted, started, stopped and
// ended in this process, and of every host's result (Observer): what
// metrics need, without this package knowing of them. Package prometheus
// (github.com/0ops/exed/prometheus) implements it.
//
// # Lifecycle
//
// NewEngine starts the dispatcher (Dispatcher.Start, once: a Dispatcher
// serves one Engine). Engine.Shutdown stops, in this order: new requests
// are refused at once (ErrBusy); the jobs and sync operations under way
// get until its context is done (jobs at most the dispatcher's grace
// period), then are cancelled with cause ErrShutdown and end "server
// shutdown", each host with its event; queued jobs never start (they end
// SKIPPED at once, or stay queued for another process on a shared
// queue); last, the follows still waiting end with ErrShutdown. The
// parts it was given stay the caller's: stop the plugins
// (loader.Set.Shutdown) after it, and close the store. A dispatcher of
// one's own implements Start and Shutdown to this contract, which
// dispatchtest.Run checks.
//
// # Logging
//
// Config.Logger (an hclog.Logger: its format, text or JSON, is the
// caller's) gets the job log, under the name "runner": one Info line
// "job started" when a Runner begins a job, and one "job ended" when the
// job ends, in the process where that happens (the one whose dispatcher
// ran it, or whose Cancel or shutdown ended it unrun), with the keys
//
//	jid, user, operation, targets     which job, who submitted it (Job.User),
//	                                  its operation, its number of targets
//	state, error                      the outcome: "Done" or "Failure", Job.Error
//	started                           false when it ended before it ran
//	duration_seconds                  how long its Runner ran it (ms precision)
//
// so that a log shipper sees every job whichever process ran it. Warnings
// and errors (a store that fails, a plugin that dies) go to the same
// logger with the job's jid.
package exe
