package exe

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Job is an asynchronous operation on a set of hosts. Its JSON form is the
// job object of the HTTP API.
type Job struct {
	JID     string   // job ID (a UUID)
	State   JobState // Running until it ends
	Error   string   // why the job failed; empty when Done
	StartAt int64    // Unix seconds
	EndAt   int64    // Unix seconds; 0 while running
	Request          // what runs, on which hosts
	// User is who submitted the job: the name of the bearer token or of
	// the client certificate that authenticated the request, "" when the
	// API serves without authentication. The server sets it from the
	// request's credentials (WithUser); no field of a request body can.
	User string
	// ReturnData holds every event grouped by host (AnnounceHost included),
	// each host's events in the order they were recorded. Stores fill it only
	// when asked for outputs.
	ReturnData map[string][]Event
}

// Finished reports whether the job has ended.
func (j *Job) Finished() bool { return j.State != JobRunning }

// jobWire is the job object of API.md. MarshalJSON writes it with the
// operation's arguments as they are (A any), encoded in the same pass as
// the job, where a json.RawMessage of them would be encoded first, then
// checked and copied again; UnmarshalJSON reads them as a
// json.RawMessage, decoded once the operation is known.
type jobWire[A any] struct {
	JID         string             `json:"jid"`
	State       JobState           `json:"state"`
	Error       string             `json:"error"`
	StartAt     int64              `json:"startat"`
	EndAt       int64              `json:"endat"`
	Operate     Operate            `json:"operate"`
	OperateArgs A                  `json:"operate_args"`
	Targets     []string           `json:"targets"`
	Timeout     float64            `json:"timeout,omitempty"` // seconds
	Forks       int                `json:"forks,omitempty"`   // hosts at once
	User        string             `json:"user"`
	ReturnData  map[string][]Event `json:"return_data"`
}

// MarshalJSON writes the job object of API.md.
func (j Job) MarshalJSON() ([]byte, error) {
	rd := j.ReturnData
	if rd == nil {
		rd = map[string][]Event{}
	}
	targets := j.Targets
	if targets == nil {
		targets = []string{}
	}
	return json.Marshal(jobWire[any]{
		JID: j.JID, State: j.State, Error: j.Error, StartAt: j.StartAt, EndAt: j.EndAt,
		Operate: j.Operate, OperateArgs: j.Request.args(), Targets: targets, Timeout: j.Timeout.Seconds(),
		Forks: j.Forks, User: j.User, ReturnData: rd,
	})
}

// UnmarshalJSON reads the job object of API.md. Events in return_data get
// their Host from the key they are filed under.
func (j *Job) UnmarshalJSON(b []byte) error {
	var w jobWire[json.RawMessage]
	err := json.Unmarshal(b, &w)
	if err != nil {
		return err
	}
	out := Job{JID: w.JID, State: w.State, Error: w.Error, StartAt: w.StartAt, EndAt: w.EndAt, User: w.User}
	out.Operate, out.Targets, out.Forks = w.Operate, w.Targets, w.Forks
	if out.Timeout, err = SecondsDuration(w.Timeout); err != nil {
		return err
	}
	if err := out.Request.setArgs(w.OperateArgs); err != nil {
		return err
	}
	if len(w.ReturnData) > 0 {
		out.ReturnData = w.ReturnData
		for host, evs := range out.ReturnData {
			for i := range evs {
				evs[i].Host = host
			}
		}
	}
	*j = out
	return nil
}

// Request is an operation with its arguments and targets: what a sync call
// runs, and what an async job stores.
type Request struct {
	Operate Operate
	Targets []string
	Service ServiceArgs // for OpService
	Execute ExecuteArgs // for OpExecute
	Deploy  DeployArgs  // for OpDeploy
	Task    TaskArgs    // for OpTask
	// Timeout bounds the operation's run, from its start: hosts not
	// finished by then are stopped (their remote commands too) and end
	// FAILED "timed out" with their partial output. Zero: no bound of its
	// own (a sync run has Config.SyncTimeout). On the wire, "timeout" in
	// seconds (a body member, or a query parameter of a sync GET); the
	// job object carries it back only when set.
	Timeout time.Duration
	// Forks bounds how many of the operation's hosts are worked on at
	// once, as ansible's -f/--forks does: zero means the executor's own
	// bound (the server's [runner] concurrency), and a larger value than
	// Config.MaxForks is lowered to it, since that bound is the
	// operator's. Negative values are refused, and so is any on a task,
	// which paces its hosts itself (rollingrestart's batch size).
	// Executors read it with ForksFrom. On the wire, "forks" (a body
	// member, or a query parameter of a sync GET); the job object
	// carries it back only when set.
	Forks int
}

// ServiceArgs are the arguments of the service operation.
type ServiceArgs struct {
	Name     string       `json:"name"`
	State    ServiceState `json:"state"`
	Graceful bool         `json:"graceful"` // with ServiceRestarted: reload instead
}

// ExecuteArgs are the arguments of the execute operation.
type ExecuteArgs struct {
	Cmd string `json:"cmd"` // run by the host's sh -c
}

// DeployArgs are the arguments of the deploy operation.
type DeployArgs struct {
	Role      string         `json:"role"`
	Partial   []string       `json:"partial"`    // tags to run; nil means all
	ExtraVars map[string]any `json:"extra_vars"` // passed to the role as data
}

// TaskArgs are the arguments of a task.
type TaskArgs struct {
	Name    string         `json:"taskname"` // a label for this run
	Type    string         `json:"tasktype"` // the task plugin's type
	Options map[string]any `json:"taskopts"` // validated against the task's schema
}

// args returns the operate_args object for this request's operation.
func (r Request) args() any {
	switch r.Operate {
	case OpService:
		return r.Service
	case OpExecute:
		return r.Execute
	case OpDeploy:
		d := r.Deploy
		if d.ExtraVars == nil {
			d.ExtraVars = map[string]any{}
		}
		return d
	case OpTask:
		t := r.Task
		if t.Options == nil {
			t.Options = map[string]any{}
		}
		return t
	}
	return struct{}{}
}

func (r *Request) setArgs(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var dst any
	switch r.Operate {
	case OpService:
		dst = &r.Service
	case OpExecute:
		dst = &r.Execute
	case OpDeploy:
		dst = &r.Deploy
	case OpTask:
		dst = &r.Task
	default:
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("operate_args of %s: %w", r.Operate, err)
	}
	return nil
}

// MaxTimeoutSeconds is the largest timeout, in seconds, that
// SecondsDuration converts: about 31 years, far below where a
// time.Duration overflows.
const MaxTimeoutSeconds = 1e9

// SecondsDuration converts a timeout in seconds, as the API writes it (a
// JSON number or a query value, fractions allowed), to a Duration rounded
// to the millisecond; a positive one is at least a millisecond, since 0
// means no timeout. It returns an ErrInvalid error for a negative, NaN
// or infinite value, or one above MaxTimeoutSeconds.
func SecondsDuration(secs float64) (time.Duration, error) {
	if math.IsNaN(secs) || secs < 0 || secs > MaxTimeoutSeconds {
		return 0, Errorf(ErrInvalid, "timeout: must be a number of seconds from 0 to %g", float64(MaxTimeoutSeconds))
	}
	d := time.Duration(math.Round(secs*1000)) * time.Millisecond
	if d == 0 && secs > 0 {
		d = time.Millisecond
	}
	return d, nil
}
