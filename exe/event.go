package exe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// AnnounceHost is the pseudo-host of events that mark the start of a play,
// step or batch and belong to no host.
const AnnounceHost = "__ANNOUNCE__"

// Event is the result of an operation (or one step of it) on one host.
//
// On the wire an event is a flat JSON object: {"status": 5, "rtc": 0,
// "stdout": "...", ...}; the host is the key it is filed under, never a field.
type Event struct {
	// Host is the inventory name the event belongs to, or AnnounceHost.
	Host string
	// Seq is the event's position in its job, from 1, set by the JobStore.
	// Zero for events that were never stored (sync results).
	Seq int64
	// Status is the outcome.
	Status HostStatus
	// Name names the step (deploy script, playbook task, task batch).
	Name string
	// Msg is a summary, or the reason for a failure.
	Msg string
	// Facts holds gathered facts (facter).
	Facts map[string]any
	// Exec holds a command's result (execute); nil for other operations.
	Exec *ExecResult
	// Truncated is set when an output field was cut at the configured cap.
	Truncated bool
	// Extra carries further executor-specific fields; they are written beside
	// the standard ones and never override them.
	Extra map[string]any
}

// ExecResult is the outcome of running a command.
type ExecResult struct {
	RTC    int
	Stdout string
	Stderr string
}

// MarshalJSON writes the flat wire form.
func (e Event) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 4+len(e.Extra))
	for k, v := range e.Extra {
		m[k] = v
	}
	m["status"] = e.Status
	if e.Name != "" {
		m["name"] = e.Name
	}
	if e.Msg != "" {
		m["msg"] = e.Msg
	}
	if e.Facts != nil {
		m["facts"] = e.Facts
	}
	if e.Exec != nil {
		m["rtc"] = e.Exec.RTC
		m["stdout"] = e.Exec.Stdout
		m["stderr"] = e.Exec.Stderr
	}
	if e.Truncated {
		m["truncated"] = true
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the flat wire form. Host and Seq are not part of it.
func (e *Event) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var out Event
	take := func(key string, dst any) error {
		raw, ok := m[key]
		if !ok {
			return nil
		}
		delete(m, key)
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("event field %q: %w", key, err)
		}
		return nil
	}
	var exec ExecResult
	_, hasRTC := m["rtc"]
	_, hasOut := m["stdout"]
	_, hasErr := m["stderr"]
	for _, f := range []struct {
		key string
		dst any
	}{
		{"status", &out.Status}, {"name", &out.Name}, {"msg", &out.Msg}, {"facts", &out.Facts},
		{"truncated", &out.Truncated}, {"rtc", &exec.RTC}, {"stdout", &exec.Stdout}, {"stderr", &exec.Stderr},
	} {
		if err := take(f.key, f.dst); err != nil {
			return err
		}
	}
	if hasRTC || hasOut || hasErr {
		out.Exec = &exec
	}
	if len(m) > 0 {
		out.Extra = make(map[string]any, len(m))
		for k, raw := range m {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("event field %q: %w", k, err)
			}
			out.Extra[k] = v
		}
	}
	out.Host, out.Seq = e.Host, e.Seq
	*e = out
	return nil
}

// Emit receives events as an operation produces them. Executors call it from
// many goroutines at once; implementations must be safe for concurrent use
// and must not block for long.
type Emit func(Event)

// NotStarted returns the SKIPPED event of a host (or, with Name set by the
// caller, a step) whose work never started because the operation's context
// ended first with cause (context.Cause). Executors and tasks emit it for
// the hosts they never started: a Runner cannot know, and reports a host
// without an event FAILED (NoResult). Its msg is "cancelled before start" for
// a cancel (ErrCancelled, context.Canceled or nil), "timed out before
// start" for a deadline, "not started: <cause>" otherwise ("not started:
// server shutdown").
func NotStarted(host string, cause error) Event {
	msg := "not started: " + fmt.Sprint(cause)
	switch {
	case cause == nil, errors.Is(cause, ErrCancelled), errors.Is(cause, context.Canceled):
		msg = "cancelled before start"
	case errors.Is(cause, context.DeadlineExceeded):
		msg = "timed out before start"
	}
	return Event{Host: host, Status: HostSkipped, Msg: msg}
}

// NoResult returns the FAILED event of a host that has no result after
// the operation's context ended with cause, when whether its command had
// started is unknown (the executor did not say): msg "cancelled; no
// result was reported, the command may have been running" for a cancel,
// "timed out; ..." for a deadline, "<cause>; ..." otherwise.
func NoResult(host string, cause error) Event {
	what := fmt.Sprint(cause)
	switch {
	case cause == nil, errors.Is(cause, ErrCancelled), errors.Is(cause, context.Canceled):
		what = "cancelled"
	case errors.Is(cause, context.DeadlineExceeded):
		what = "timed out"
	}
	return Event{Host: host, Status: HostFailed, Msg: what + "; no result was reported, the command may have been running"}
}
