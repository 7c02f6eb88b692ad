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
	// comma-separated union ("web1,db1"), so "," must mean union, and
	// each target must be a name it returns, with one exception, Ansible's:
	// localhost, 127.0.0.1 and ::1 may name a host of another name (the
	// inventory's localhost-like host, or the implicit localhost named
	// after the first of them the pattern uses, so that
	// "localhost,127.0.0.1" selects one host, localhost). For such a
	// target the Engine asks which host it is, intersecting the union
	// with it ("localhost,127.0.0.1,&127.0.0.1"): an answer of one host
	// makes the target that host's alias (an ErrInvalid error: the
	// executor has no '&', nor aliases). The Engine then runs the
	// operation, keys its results and stores the job under the names
	// returned, each host once.
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
// Engine.RunSync call it after Request.Validate and before the targets are
// resolved, for every operation, task included; an executor returns nil
// for what it does not check. An ErrInvalid error refuses the request (400
// on the HTTP API) and nothing is stored; the executor must still check at
// run time, since a role can vanish between the two. Executor plugins get
// it through the plugin protocol; a plugin built before it has no
// objections.
type RequestValidator interface {
	ValidateRequest(ctx context.Context, req Request) error
}

// ValidationScope is implemented by RequestValidators that check the
// requests of some operations only: when Validates(op) is false,
// ValidateRequest would return nil for every request of op, and the Engine
// does not call it (for an executor plugin, that saves a round trip to the
// plugin process per request). A RequestValidator without it is asked
// about every request.
type ValidationScope interface {
	Validates(op Operate) bool
}

// MatchVersioner is implemented by executors whose Match answers change
// only when they load an inventory (when made, and on a reload), not from
// one call to the next. MatchVersion returns a number that grows after
// every such change, and ok false when answers may change at any time.
// The Engine then keeps its answers for the patterns it was asked about
// (a request's targets, GET /target) until the version grows, instead of
// asking for every request: for an executor plugin, that is a round trip
// to its process per request.
//
// The version must grow only once the new inventory answers: an answer
// given while it grows is then kept under the older version, and dropped.
// For an executor served as a plugin, exed asks when the plugin starts
// whether it implements this, and from then on takes its answers to
// change only when it is configured (started, started again, or sent its
// section again on a reload). An executor that reads its inventory anew
// for each Match (the ansible executor runs ansible --list-hosts) does not
// implement it.
type MatchVersioner interface {
	MatchVersion() (version uint64, ok bool)
}

// Capabilities is implemented by executors that do not perform every
// operation: the Engine asks before it runs or stores a request, so an
// unsupported operation is refused at once (ErrNotSupported, HTTP 501) for
// sync and async requests alike, instead of a job that fails later.
// Executors without it are taken to support every operation.
type Capabilities interface {
	// Supports reports whether the executor performs op (ping, facter,
	// service, execute or deploy).
	Supports(op Operate) bool
}

// Supports reports whether x performs op: what x's Capabilities say, or
// true when x does not have them.
func Supports(x Executor, op Operate) bool {
	if c, ok := x.(Capabilities); ok {
		return c.Supports(op)
	}
	return true
}

// ExecutorOperations are the operations an Executor performs, in the order
// of its methods.
var ExecutorOperations = []Operate{OpPing, OpFacter, OpService, OpExecute, OpDeploy}

// Only declares the operations an executor performs, and answers the
// others: an executor that does not perform every operation embeds it and
// writes Match and the operations it has, which it lists in Only. Only's
// own operations return ErrNotSupported, and its Supports (Capabilities)
// says which operations the executor has, so that the others are refused
// at once, 501 for sync and async requests alike, before anything is
// stored:
//
//	type Executor struct {
//		exe.Only // exe.Only{exe.OpPing, exe.OpExecute}
//		inv *inventory.Inventory
//	}
//	func (x *Executor) Match(ctx context.Context, p string) ([]string, error) { return x.inv.Match(p) }
//	func (x *Executor) Ping(...) error    { ... }
//	func (x *Executor) Execute(...) error { ... }
//
// An operation written but not listed is refused (501); one listed but not
// written answers ErrNotSupported when it runs. executortest.Run finds
// both, and says which operation to list or to write.
type Only []Operate

// Supports implements Capabilities: whether op is listed.
func (o Only) Supports(op Operate) bool {
	for _, s := range o {
		if s == op {
			return true
		}
	}
	return false
}

// Ping returns ErrNotSupported: the executor that embeds Only does not
// ping.
func (Only) Ping(context.Context, []string, Emit) error { return notSupported(OpPing) }

// Facter returns ErrNotSupported.
func (Only) Facter(context.Context, []string, Emit) error { return notSupported(OpFacter) }

// Service returns ErrNotSupported.
func (Only) Service(context.Context, []string, ServiceArgs, Emit) error {
	return notSupported(OpService)
}

// Execute returns ErrNotSupported.
func (Only) Execute(context.Context, []string, ExecuteArgs, Emit) error {
	return notSupported(OpExecute)
}

// Deploy returns ErrNotSupported.
func (Only) Deploy(context.Context, []string, DeployArgs, Emit) error {
	return notSupported(OpDeploy)
}

// Unsupported answers every operation with ErrNotSupported, like Only,
// but declares none: without Capabilities, an executor that embeds it
// alone is taken to perform every operation, so a request for one it
// lacks is accepted and its job fails later. Embed Only instead, which
// declares and answers in one list. Unsupported embedded beside Only
// still works: Only's operations take precedence, its own being one
// level deeper.
type Unsupported struct{ unsupported }

// unsupported holds Unsupported's operations one level below the
// executor's own fields, so that Only's win over them when both are
// embedded.
type unsupported struct{}

func notSupported(op Operate) error {
	return Errorf(ErrNotSupported, "%s is not supported by this executor", op)
}

// Ping returns ErrNotSupported.
func (unsupported) Ping(context.Context, []string, Emit) error { return notSupported(OpPing) }

// Facter returns ErrNotSupported.
func (unsupported) Facter(context.Context, []string, Emit) error { return notSupported(OpFacter) }

// Service returns ErrNotSupported.
func (unsupported) Service(context.Context, []string, ServiceArgs, Emit) error {
	return notSupported(OpService)
}

// Execute returns ErrNotSupported.
func (unsupported) Execute(context.Context, []string, ExecuteArgs, Emit) error {
	return notSupported(OpExecute)
}

// Deploy returns ErrNotSupported.
func (unsupported) Deploy(context.Context, []string, DeployArgs, Emit) error {
	return notSupported(OpDeploy)
}
