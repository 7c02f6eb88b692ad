package pluginrpc

import (
	"context"
	"errors"
	"sync"
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

// earlyCancelTTL is how long a Cancel that arrived before its operation
// is kept for it. gRPC gives no order between a stream's start on the
// server and a later unary call, so a cancel sent right after a submit can
// overtake the operation it names; kept, it ends the operation as soon as
// it starts instead of being lost (the command would run to its end).
const earlyCancelTTL = time.Minute

// ops tracks the operations (or task runs) a server runs, by the ID their
// caller gave them, so that Cancel can reach them, and the cancels that
// overtook their operation.
type ops struct {
	mu    sync.Mutex // orders a start against a cancel of the same ID
	jobs  running.Jobs
	early map[string]earlyCancel
}

type earlyCancel struct {
	cause error
	at    time.Time
}

// start returns ctx's child that cancel(id) interrupts, and a func to call
// when the work has ended. An empty id (a caller that never cancels this
// way) tracks nothing.
func (o *ops) start(ctx context.Context, id string) (context.Context, context.CancelCauseFunc, func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ctx, cancel, end := o.jobs.Begin(ctx, id)
	if early, overtaken := o.early[id]; overtaken && id != "" {
		delete(o.early, id)
		cancel(early.cause)
	}
	return ctx, cancel, end
}

// cancel interrupts the work named by req with the cause it carries. A
// cancel for an ID that is not running yet is kept for earlyCancelTTL, in
// case its operation is still on its way.
func (o *ops) cancel(req *pluginpb.CancelRequest) {
	cause := causeFromPB(req)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.jobs.Cancel(req.GetId(), cause) || req.GetId() == "" {
		return
	}
	now := time.Now()
	if o.early == nil {
		o.early = map[string]earlyCancel{}
	}
	for id, e := range o.early {
		if now.Sub(e.at) > earlyCancelTTL {
			delete(o.early, id)
		}
	}
	o.early[req.GetId()] = earlyCancel{cause: cause, at: now}
}

// causes are the cancellation causes a plugin recognises with errors.Is.
var causes = []error{exe.ErrCancelled, exe.ErrShutdown, exe.ErrWorkerLost, exe.ErrLeaseLost}

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

// call is the host's end of one operation (or task run) in a plugin.
type call interface {
	// recv returns the next event; io.EOF when the work succeeded, else
	// the status error it ended with.
	recv() (*pluginpb.Event, error)
	// abort ends the call at once, beyond the cancel of the context it
	// was opened with.
	abort()
	// release is called once the call is over; clean: its outcome was
	// read and its caller's context never ended.
	release(clean bool)
}

// recvCall is a call that is one server-streaming RPC (Operate, Run): its
// context is all there is to end.
type recvCall func() (*pluginpb.Event, error)

func (r recvCall) recv() (*pluginpb.Event, error) { return r() }
func (recvCall) abort()                           {}
func (recvCall) release(bool)                     {}

// interruptible reads a call (open) until it ends, delivering each event
// to emit. The call does not end with ctx: when ctx ends, the plugin is
// asked to interrupt the work (cancel) and the call is read on for the
// events that produces (the hosts it stopped, with their partial output)
// for up to DrainTimeout. A plugin built without Cancel has its call
// cancelled at once, as a cancel of ctx did before.
func interruptible(ctx context.Context, cancel cancelFunc, open func(ctx context.Context, id string) (call, error), emit exe.Emit) error {
	id := uuid.NewString()
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	c, err := open(sctx, id)
	if err != nil {
		return fromStatus(ctx, err)
	}
	watch := context.AfterFunc(ctx, func() {
		cctx, done := context.WithTimeout(sctx, cancelCallTimeout)
		defer done()
		if _, err := cancel(cctx, causeToPB(ctx, id)); err != nil {
			stop() // no Cancel in this plugin, or it cannot be reached
			c.abort()
			return
		}
		drain := time.AfterFunc(DrainTimeout, func() { stop(); c.abort() })
		context.AfterFunc(sctx, func() { drain.Stop() })
	})
	err = receive(sctx, c.recv, emit)
	// Stopped before it ran: ctx never ended, nothing interrupted the
	// call, which is clean if it was read to its end.
	c.release(watch())
	if err != nil && ctx.Err() != nil {
		// The work was interrupted: say so as an executor in process does.
		return ctx.Err()
	}
	return err
}
