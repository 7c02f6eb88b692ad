package exe

import "time"

// Observer is told what an Engine and its Runner do, as it happens: jobs
// submitted, run and ended, and each host's result. It is how metrics
// see the domain without the domain knowing of them: package prometheus
// (github.com/0ops/exed/prometheus) implements it as Prometheus metrics;
// Config.Observer and Runner.Observer take it.
//
// Each process reports what it does itself: a server that queues jobs
// for `exed worker` processes reports them submitted, and the worker
// that runs one reports it started, stopped and ended. Summed over the
// processes, every job is submitted once and ended at most once.
//
// Its methods are called on the paths that run jobs and hosts, from many
// goroutines at once: they must be quick, never block, and be safe for
// concurrent use. Embed NoObserver to implement only some of them.
type Observer interface {
	// JobSubmitted: Engine.Submit stored and dispatched a job of op (it
	// answered its ID).
	JobSubmitted(op Operate)
	// JobStarted: a Runner of this process began running a job of op;
	// JobStopped follows once it returns, ran after.
	JobStarted(op Operate)
	JobStopped(op Operate, ran time.Duration)
	// JobEnded: this process stored the outcome of a job of op, state
	// JobDone or JobFailure: its Runner's, or a cancel's, a shutdown's or a
	// lost worker's for a job that never ran here. A job's outcome is
	// stored once, whoever tries: it is reported once.
	JobEnded(op Operate, state JobState)
	// HostResult: a host got an event of op with status (never
	// HostAnnounce): one per host for ping, facter, service and execute,
	// one per step and host for deploy and tasks; a sync operation's
	// (Engine.RunSync) as well as a job's, including the events the
	// Runner gives hosts that reported nothing. A job's event is
	// reported by whoever stored it, once the store took it: a Runner's
	// event that the store refused because the job had ended meanwhile
	// (a cancel that gave the host an event of its own) is not, so the
	// results counted are those the stored jobs hold.
	HostResult(op Operate, status HostStatus)
}

// NoObserver does nothing with what it is told: the Observer when none is
// given, and one to embed.
type NoObserver struct{}

var _ Observer = NoObserver{}

// JobSubmitted does nothing.
func (NoObserver) JobSubmitted(Operate) {}

// JobStarted does nothing.
func (NoObserver) JobStarted(Operate) {}

// JobStopped does nothing.
func (NoObserver) JobStopped(Operate, time.Duration) {}

// JobEnded does nothing.
func (NoObserver) JobEnded(Operate, JobState) {}

// HostResult does nothing.
func (NoObserver) HostResult(Operate, HostStatus) {}
