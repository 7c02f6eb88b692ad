package exe

import "fmt"

// JobState is the state of an asynchronous job. Its numeric values are part
// of the wire format.
type JobState int

// Job states.
const (
	JobDone    JobState = 0 // every host ended without FAILED/UNREACHABLE
	JobRunning JobState = 1 // queued or running
	JobFailure JobState = 2 // a host failed, the job was cancelled, or it could not run
)

func (s JobState) String() string {
	switch s {
	case JobDone:
		return "Done"
	case JobRunning:
		return "Running"
	case JobFailure:
		return "Failure"
	}
	return fmt.Sprintf("JobState(%d)", int(s))
}

// HostStatus is the outcome of one operation on one host. Its numeric
// values are part of the wire format.
type HostStatus int

// Host statuses.
const (
	HostAnnounce    HostStatus = 0 // start of a play, step or batch; belongs to no host
	HostOK          HostStatus = 1 // succeeded, nothing changed
	HostSkipped     HostStatus = 2 // not run on this host
	HostFailed      HostStatus = 3 // ran and failed (e.g. non-zero exit)
	HostUnreachable HostStatus = 4 // could not reach the host
	HostChanged     HostStatus = 5 // succeeded and changed something
)

func (s HostStatus) String() string {
	switch s {
	case HostAnnounce:
		return "ANNOUNCE"
	case HostOK:
		return "OK"
	case HostSkipped:
		return "SKIPPED"
	case HostFailed:
		return "FAILED"
	case HostUnreachable:
		return "UNREACHABLE"
	case HostChanged:
		return "CHANGED"
	}
	return fmt.Sprintf("HostStatus(%d)", int(s))
}

// Failure reports whether s makes a host count as failed in a job's outcome.
func (s HostStatus) Failure() bool { return s == HostFailed || s == HostUnreachable }

// ServiceState is the desired state of a service. Its numeric values are
// part of the wire format.
type ServiceState int

// Service desired states.
const (
	ServiceStarted   ServiceState = 0
	ServiceStopped   ServiceState = 1
	ServiceRestarted ServiceState = 2 // with Graceful: reloaded
)

func (s ServiceState) String() string {
	switch s {
	case ServiceStarted:
		return "started"
	case ServiceStopped:
		return "stopped"
	case ServiceRestarted:
		return "restarted"
	}
	return fmt.Sprintf("ServiceState(%d)", int(s))
}

// Operate names an operation. Its string values are part of the wire format
// (the job object's "operate" field).
type Operate string

// Operations.
const (
	OpPing    Operate = "ping"
	OpFacter  Operate = "facter"
	OpService Operate = "service"
	OpExecute Operate = "execute"
	OpDeploy  Operate = "deploy"
	OpTask    Operate = "task"
)

// Mutex reports whether at most one running job may hold a given host for
// this operation (deploy and tasks).
func (o Operate) Mutex() bool { return o == OpDeploy || o == OpTask }

// Valid reports whether o is a known operation.
func (o Operate) Valid() bool {
	switch o {
	case OpPing, OpFacter, OpService, OpExecute, OpDeploy, OpTask:
		return true
	}
	return false
}
