// Package pluginrpc holds the gRPC shims between the exe interfaces and the
// generated plugin protocol: a server shim that serves an exe.Executor or
// exe.Task, and a client shim that is one, with the conversions of events
// and errors in between. The public executor and task packages wire them
// into go-plugin.
package pluginrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Configurer is implemented by plugins that take a config section: the
// key/values of their section of exed.conf. An error fails the server's
// start, so it should name the option and say what is wrong with it.
// Configure is called after every start of the plugin and again when the
// server reloads (SIGHUP), while operations may be running: a plugin
// re-reads what the section points at (an inventory), or does nothing
// new; an error then keeps what it had, and the server logs it.
type Configurer interface {
	Configure(ctx context.Context, config map[string]string) error
}

// eventToPB converts an event for the wire. Its strings are made valid
// UTF-8 first: proto3 refuses to marshal any other string, and the error
// would end the whole operation, every host's result with it.
func eventToPB(ev exe.Event) (*pluginpb.Event, error) {
	ev = ev.ToValidUTF8()
	out := &pluginpb.Event{Host: ev.Host, Status: int32(ev.Status), Name: ev.Name, Msg: ev.Msg, Truncated: ev.Truncated}
	var err error
	if ev.Facts != nil {
		if out.FactsJson, err = json.Marshal(ev.Facts); err != nil {
			return nil, fmt.Errorf("event facts: %w", err)
		}
	}
	if ev.Extra != nil {
		if out.ExtraJson, err = json.Marshal(ev.Extra); err != nil {
			return nil, fmt.Errorf("event extra fields: %w", err)
		}
	}
	if ev.Exec != nil {
		out.HasExec, out.Rtc, out.Stdout, out.Stderr = true, int32(ev.Exec.RTC), ev.Exec.Stdout, ev.Exec.Stderr
	}
	return out, nil
}

func eventFromPB(in *pluginpb.Event) (exe.Event, error) {
	ev := exe.Event{Host: in.Host, Status: exe.HostStatus(in.Status), Name: in.Name, Msg: in.Msg, Truncated: in.Truncated}
	if len(in.FactsJson) > 0 {
		if err := json.Unmarshal(in.FactsJson, &ev.Facts); err != nil {
			return ev, fmt.Errorf("event facts: %w", err)
		}
	}
	if len(in.ExtraJson) > 0 {
		if err := json.Unmarshal(in.ExtraJson, &ev.Extra); err != nil {
			return ev, fmt.Errorf("event extra fields: %w", err)
		}
	}
	if in.HasExec {
		ev.Exec = &exe.ExecResult{RTC: int(in.Rtc), Stdout: in.Stdout, Stderr: in.Stderr}
	}
	return ev, nil
}

// errorDomain marks the ErrorInfo details that carry an exe error kind.
const errorDomain = "exed"

// toStatus turns an implementation's error into a gRPC status error. The
// message is made valid UTF-8: it may quote what a host printed, and a
// status whose message is not cannot carry its error kind.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	msg := exe.ToValidUTF8(err.Error())
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	}
	// The kind crosses as an ErrorInfo reason (exe.ErrorKinds), so that a
	// plugin's errors.Is(err, exe.ErrInvalid) is still true on the host.
	if kind, ok := exe.KindOf(err); ok {
		st, derr := status.New(codes.Unknown, msg).WithDetails(&errdetails.ErrorInfo{Reason: kind.Reason, Domain: errorDomain})
		if derr == nil {
			return st.Err()
		}
	}
	return status.Error(codes.Unknown, msg)
}

// TransportError is a failure of the connection to the plugin rather than
// an error the plugin returned: the process may have died. Callers that
// manage the process replace it with what happened to the process.
type TransportError struct {
	Code codes.Code
	Msg  string
}

func (e *TransportError) Error() string { return "plugin connection: " + e.Msg }

// PublicMessage is what clients see (exe.PublicMessage): gRPC's own text
// names sockets and transport details, which go to the log only.
func (e *TransportError) PublicMessage() string { return "plugin connection lost" }

// Is makes a transport failure an exe.ErrUnavailable.
func (e *TransportError) Is(target error) bool { return target == exe.ErrUnavailable }

// fromStatus turns a gRPC error back into the error the plugin returned.
func fromStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	// A plugin built without this package's conversions may send any bytes.
	msg := exe.ToValidUTF8(st.Message())
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == errorDomain {
			if kind, ok := exe.KindByReason(info.Reason); ok {
				return exe.Errorf(kind.Err, "%s", msg)
			}
		}
	}
	switch st.Code() {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	case codes.Unavailable, codes.Internal:
		return &TransportError{Code: st.Code(), Msg: msg}
	}
	return errors.New(msg)
}
