package pluginrpc

import (
	"context"
	"errors"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/0ops/exed/internal/running"
	"github.com/google/uuid"
	"google.golang.org/grpc"
)

// DrainTimeout bounds how long a caller whose context ended keeps reading
// an operation's (or task run's) stream after it asked the plugin to
// interrupt the work: long enough for an executor to stop its commands
// (sshnative's kill_grace twice, plus round trips) and report them; a
// plugin that takes longer has its stream cancelled.
const DrainTimeout = 30 * time.Second

// cancelCallTimeout bounds the Cancel call itself.
const cancelCallTimeout = 5 * time.Second

// cancelRunning interrupts the work (an operation, a task run) named by
// req with the cause it carries; ops keeps the work by the ID its caller
// gave it.
func cancelRunning(ops *running.Jobs, req *pluginpb.CancelRequest) {
	ops.Cancel(req.GetId(), causeFromPB(req))
}

// causes are the cancellation causes a plugin recognises with errors.Is.
var causes = []error{exe.ErrCancelled, exe.ErrShutdown, exe.ErrWorkerLost}

// causeToPB describes why ctx ended for a CancelRequest.
func causeToPB(ctx context.Context, id string) *pluginpb.CancelRequest {
	req := &pluginpb.CancelRequest{Id: id}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		req.Deadline = true
		return req
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		req.Cause = cause.Error()
	}
	return req
}

// causeFromPB is the cause the plugin's context is cancelled with: the
// caller's deadline, one of exe's causes, or the caller's text.
func causeFromPB(req *pluginpb.CancelRequest) error {
	if req.GetDeadline() {
		return context.DeadlineExceeded
	}
	if req.GetCause() == "" {
		return exe.ErrCancelled
	}
	for _, c := range causes {
		if c.Error() == req.GetCause() {
			return c
		}
	}
	return errors.New(req.GetCause())
}

// cancelFunc is a Cancel RPC of the generated clients.
type cancelFunc func(ctx context.Context, req *pluginpb.CancelRequest, opts ...grpc.CallOption) (*pluginpb.Empty, error)

// interruptible reads a server-streaming call (open) until it ends,
// delivering each event to emit. The stream does not end with ctx: when
// ctx ends, the plugin is asked to interrupt the work (cancel) and the
// stream is read on for the events that produces (the hosts it stopped,
// with their partial output) for up to DrainTimeout. A plugin built
// without Cancel has its stream cancelled at once, as a cancel of ctx did
// before.
func interruptible(ctx context.Context, cancel cancelFunc, open func(ctx context.Context, id string) (func() (*pluginpb.Event, error), error), emit exe.Emit) error {
	id := uuid.NewString()
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	recv, err := open(sctx, id)
	if err != nil {
		return fromStatus(ctx, err)
	}
	watch := context.AfterFunc(ctx, func() {
		cctx, done := context.WithTimeout(sctx, cancelCallTimeout)
		defer done()
		if _, err := cancel(cctx, causeToPB(ctx, id)); err != nil {
			stop() // no Cancel in this plugin, or it cannot be reached
			return
		}
		drain := time.AfterFunc(DrainTimeout, stop)
		context.AfterFunc(sctx, func() { drain.Stop() })
	})
	defer watch()
	err = receive(sctx, recv, emit)
	if err != nil && ctx.Err() != nil {
		// The work was interrupted: say so as an executor in process does.
		return ctx.Err()
	}
	return err
}
