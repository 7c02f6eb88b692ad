package exe

import "context"

// Executor performs operations on hosts. Each operation fans out over hosts,
// calls emit once per host result as soon as that host finishes (not when the
// slowest host does), honours ctx cancellation, and returns an error only when
// the operation as a whole could not run; per-host failures are events with
// status FAILED or UNREACHABLE. An operation the executor does not implement
// returns ErrNotSupported.
//
// Hosts given to an operation have been resolved with Match.
type Executor interface {
	// Match returns the sorted, de-duplicated inventory names that pattern
	// selects. A pattern that selects nothing returns an empty list, not an
	// error; a malformed pattern returns an ErrInvalid error. The Engine
	// checks a request's targets with one call whose pattern is their
	// comma-separated union ("web1,db1"), so "," must mean union.
	Match(ctx context.Context, pattern string) ([]string, error)
	// Ping checks that each host answers: status OK, or UNREACHABLE with msg.
	Ping(ctx context.Context, hosts []string, emit Emit) error
	// Facter gathers facts: status OK with Facts.
	Facter(ctx context.Context, hosts []string, emit Emit) error
	// Service brings a service to the desired state: CHANGED when it acted,
	// OK when the service already was in that state.
	Service(ctx context.Context, hosts []string, args ServiceArgs, emit Emit) error
	// Execute runs a command: CHANGED with Exec on exit 0, FAILED with Exec
	// otherwise.
	Execute(ctx context.Context, hosts []string, args ExecuteArgs, emit Emit) error
	// Deploy applies a role: one event per step and host, with Name.
	Deploy(ctx context.Context, hosts []string, args DeployArgs, emit Emit) error
}

// HealthChecker is implemented by executors, stores and dispatchers that can
// tell whether they are able to serve; /healthz asks every part that does.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// RequestValidator is implemented by executors that can tell before a
// request is stored or run that they would refuse it: a deploy's role that
// does not exist, extra_vars the executor reserves. Engine.Submit and
// Engine.Run call it after Request.Validate and before the targets are
// resolved, for every operation, task included; an executor returns nil
// for what it does not check. An ErrInvalid error refuses the request (400
// on the HTTP API) and nothing is stored; the executor must still check at
// run time, since a role can vanish between the two. Executor plugins get
// it through the plugin protocol; a plugin built before it has no
// objections.
type RequestValidator interface {
	ValidateRequest(ctx context.Context, req Request) error
}
