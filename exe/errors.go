package exe

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sentinel errors. Transports map them to status codes (see transport/http);
// everything else is an internal error whose text is logged, not shown.
var (
	// ErrInvalid marks bad input: the request is refused and nothing runs.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound is returned for a job that does not exist (or expired).
	ErrNotFound = errors.New("no such job")
	// ErrConflict is returned when a mutex operation (deploy, task) targets a
	// host that another running mutex job holds.
	ErrConflict = errors.New("operate conflict")
	// ErrRunning is returned when deleting a job that is still running.
	ErrRunning = errors.New("job is still running")
	// ErrFinished is returned when cancelling, finishing or appending to a
	// job that has already ended.
	ErrFinished = errors.New("job has already finished")
	// ErrNotSupported is returned by an executor for an operation it does not
	// implement.
	ErrNotSupported = errors.New("operation not supported by this executor")
	// ErrNoMatch is matched (errors.Is) by every *NoMatchError.
	ErrNoMatch = errors.New("no hosts match that target")
	// ErrBusy is returned when the server cannot take more work right now
	// (queue full, job table full, shutting down).
	ErrBusy = errors.New("server busy")
	// ErrUnavailable is returned when a backend (store, broker, plugin) cannot
	// be reached; the request may succeed later.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrDegraded is returned by a HealthChecker whose part answers but
	// cannot do all of its work (no worker takes queued jobs): the server
	// still serves, so /healthz says "degraded" rather than unavailable.
	ErrDegraded = errors.New("degraded")
)

// Errorf returns an error that matches kind with errors.Is and whose text is
// the formatted message alone. Use it to give a sentinel a precise, human
// readable message, e.g. Errorf(ErrInvalid, "state must be 0, 1 or 2").
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Is(target error) bool {
	return target == e.kind
}

// Unwrap lets callers reach the sentinel with errors.As/Is chains.
func (e *kindError) Unwrap() error { return e.kind }

// NoMatchError names the targets that matched no inventory host.
type NoMatchError struct {
	Hosts []string
}

func (e *NoMatchError) Error() string {
	hosts := append([]string(nil), e.Hosts...)
	sort.Strings(hosts)
	return ErrNoMatch.Error() + ": " + strings.Join(hosts, ", ")
}

// Is makes errors.Is(err, ErrNoMatch) true.
func (e *NoMatchError) Is(target error) bool { return target == ErrNoMatch }

// ConflictError says which host is held by which job.
type ConflictError struct {
	Host string
	JID  string
	// Held is zero while the job runs. More than zero, the job has
	// ended but still holds the host for that long: it was cancelled and
	// its worker did not confirm the stop in time (cut off from the
	// store, or slow), so that worker may still run its command until it
	// stops it itself; the lock lapses then (jobstore/redis: when the
	// job's lease would have).
	Held time.Duration
}

func (e *ConflictError) Error() string {
	if e.Held > 0 {
		return fmt.Sprintf("%s: host %s is locked for %s more by job %s, %s", ErrConflict, e.Host, e.heldFor(), e.JID, heldWhy)
	}
	return fmt.Sprintf("%s: host %s is locked by running job %s", ErrConflict, e.Host, e.JID)
}

// heldWhy says why an ended job holds a host (ConflictError.Held).
const heldWhy = "cancelled without its worker confirming the stop: the worker may run its command until then"

// heldFor is Held in whole seconds, rounded up: "0s" would say it is free.
func (e *ConflictError) heldFor() string {
	return (e.Held + time.Second - 1).Truncate(time.Second).String()
}

// Anonymous is the error without the job's id, for a caller that may not
// see that job (another user's): the host is locked, by whom is not its
// business.
func (e *ConflictError) Anonymous() error {
	if e.Held > 0 {
		return Errorf(ErrConflict, "%s: host %s is locked for %s more by a job of another user, %s", ErrConflict, e.Host, e.heldFor(), heldWhy)
	}
	return Errorf(ErrConflict, "%s: host %s is locked by a running job of another user", ErrConflict, e.Host)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// WithCause returns an error that matches kind with errors.Is and whose
// public text (PublicMessage) is the formatted message alone, while its
// Error() appends cause, for the log. Use it where the cause names what
// clients must not see: addresses, paths, a backend's own error chain.
func WithCause(kind, cause error, format string, args ...any) error {
	return &causeError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

type causeError struct {
	kind  error
	msg   string
	cause error
}

func (e *causeError) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

// PublicMessage is the text without the cause.
func (e *causeError) PublicMessage() string { return e.msg }

func (e *causeError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// ErrorKind describes one kind of error that exe's callers tell apart: its
// sentinel, its name on the wire between a plugin and its host, and the HTTP
// status the API answers it with. ErrorKinds is the one table of them; the
// HTTP API and the plugin protocol both derive their mappings from it.
type ErrorKind struct {
	// Err is the sentinel: errors.Is(err, Err) tells the kind.
	Err error
	// Reason is the kind's stable name, sent as a gRPC ErrorInfo reason so
	// that errors.Is still holds after an error crossed a plugin boundary.
	Reason string
	// HTTPStatus is the status code transport/http answers with.
	HTTPStatus int
}

// ErrorKinds lists every error kind in the order KindOf tries them: an
// error that matches several kinds (a wrapped chain) takes the first.
var ErrorKinds = []ErrorKind{
	{ErrInvalid, "invalid", 400},
	{ErrNoMatch, "no_match", 404},
	{ErrNotFound, "not_found", 404},
	{ErrConflict, "conflict", 409},
	{ErrRunning, "running", 409},
	{ErrFinished, "finished", 409},
	{ErrNotSupported, "not_supported", 501},
	{ErrBusy, "busy", 503},
	{ErrUnavailable, "unavailable", 503},
	// Only health checks return it, and /healthz answers it 200 (the
	// server serves); as any other answer's error it would be a 503.
	{ErrDegraded, "degraded", 503},
}

// KindOf returns err's kind from ErrorKinds; ok is false for an unexpected
// error (a bug or an internal failure), which callers log and show as
// "internal error".
func KindOf(err error) (kind ErrorKind, ok bool) {
	if err == nil {
		return ErrorKind{}, false
	}
	for _, k := range ErrorKinds {
		if errors.Is(err, k.Err) {
			return k, true
		}
	}
	return ErrorKind{}, false
}

// KindByReason returns the kind named reason (ErrorKind.Reason).
func KindByReason(reason string) (ErrorKind, bool) {
	for _, k := range ErrorKinds {
		if k.Reason == reason {
			return k, true
		}
	}
	return ErrorKind{}, false
}

// PublicMessage returns the text that may be shown to a client (an HTTP
// answer, a job's error, an event's msg) for err. An error in the chain
// that has a PublicMessage() string method (WithCause's) gives its own;
// the kinds of ErrorKinds give the error's text; anything else gives a
// generic text, so that unexpected errors never leak paths, addresses or
// secrets: their details belong in the log.
func PublicMessage(err error) string {
	var pub interface{ PublicMessage() string }
	if errors.As(err, &pub) {
		return pub.PublicMessage()
	}
	if _, ok := KindOf(err); ok {
		return err.Error()
	}
	return "internal error"
}
