package pluginrpc

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/0ops/exed/internal/pluginpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxIdleStreams bounds the OperateStream streams an ExecutorClient keeps
// open between operations; more at once are opened as needed, and closed
// when their operation ends.
const MaxIdleStreams = 64

// OperateStreams keeps the idle OperateStream streams of one connection to
// a plugin (one plugin process: a restarted plugin is a new connection
// and a new OperateStreams), so that an operation costs no stream setup on
// either side. A stream carries one operation at a time, as an HTTP/1.1
// connection does one request, so that a slow reader of one operation's
// events never holds back another's: an operation takes an idle stream or
// opens one, and gives it back only when it ended cleanly (its end was
// read, its caller's context never ended); any other stream is closed.
type OperateStreams struct {
	rpc pluginpb.ExecutorClient

	mu   sync.Mutex
	idle []*operateStream
	// old: the plugin answered Unimplemented, it was built before
	// OperateStream; its operations go by Operate from then on.
	old    atomic.Bool
	opened atomic.Int64
}

// NewOperateStreams returns the stream pool of the connection rpc is on.
func NewOperateStreams(rpc pluginpb.ExecutorClient) *OperateStreams {
	return &OperateStreams{rpc: rpc}
}

// Opened is how many streams were opened so far.
func (p *OperateStreams) Opened() int64 { return p.opened.Load() }

// Idle is how many streams are kept open between operations.
func (p *OperateStreams) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

type operateStream struct {
	stream pluginpb.Executor_OperateStreamClient
	cancel context.CancelFunc // ends the stream, on both sides
}

// take returns an idle stream, or a new one (fresh).
func (p *OperateStreams) take() (s *operateStream, fresh bool, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		s = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return s, false, nil
	}
	p.mu.Unlock()
	// The stream outlives the operation: its context is its own, and
	// ends when the stream is closed (or the connection is).
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := p.rpc.OperateStream(ctx)
	if err != nil {
		cancel()
		return nil, true, err
	}
	p.opened.Add(1)
	return &operateStream{stream: stream, cancel: cancel}, true, nil
}

// put keeps s for a later operation, or closes it when enough are kept.
func (p *OperateStreams) put(s *operateStream) {
	p.mu.Lock()
	if len(p.idle) < MaxIdleStreams {
		p.idle = append(p.idle, s)
		s = nil
	}
	p.mu.Unlock()
	if s != nil {
		s.cancel()
	}
}

// start sends req on an idle or new stream; sctx is the operation's
// context, which a plugin built before OperateStream gets its Operate
// call with. The request is sent at most once: another stream is tried
// only when Send failed, and a Send that fails has written nothing (gRPC
// writes a message only on a stream that has not ended, else returns
// io.EOF), so the plugin cannot have received the request. An idle
// stream can have ended unseen (the plugin's server stopped it); a
// request sent on it may or may not have run, and fails as a lost
// connection does, never sent again.
func (p *OperateStreams) start(sctx context.Context, req *pluginpb.OperateRequest) (*streamCall, error) {
	for {
		s, fresh, err := p.take()
		if err != nil {
			return nil, err
		}
		if err = s.stream.Send(req); err == nil {
			return &streamCall{pool: p, s: s, fresh: fresh, sctx: sctx, req: req}, nil
		}
		if !fresh {
			s.cancel()
			continue
		}
		// A new stream that ended at once: its status says why.
		_, err = s.stream.Recv()
		s.cancel()
		if status.Code(err) == codes.Unimplemented {
			p.old.Store(true)
			c := &streamCall{pool: p, sctx: sctx, req: req}
			return c, c.fallBack()
		}
		if err == nil || errors.Is(err, io.EOF) {
			err = errNoEnd
		}
		return nil, err
	}
}

// errNoEnd is a stream that ended without the operation's end: the
// plugin's server stopped it.
var errNoEnd = &TransportError{Code: codes.Unavailable, Msg: "operation stream ended before the operation"}

// streamCall is one operation on an OperateStream stream.
type streamCall struct {
	pool  *OperateStreams
	s     *operateStream
	fresh bool // s was opened for this operation
	sctx  context.Context
	req   *pluginpb.OperateRequest
	ended bool // the operation's end was read
	// operate is the Operate stream's Recv, for a plugin built before
	// OperateStream.
	operate func() (*pluginpb.Event, error)
}

// fallBack runs the operation with Operate, as for a plugin built before
// OperateStream: it answered the stream Unimplemented, without running
// anything.
func (c *streamCall) fallBack() error {
	stream, err := c.pool.rpc.Operate(c.sctx, c.req)
	if err != nil {
		return err
	}
	c.operate = stream.Recv
	return nil
}

// recv returns the operation's next event, io.EOF after its end when it
// succeeded, or the status error it ended with.
func (c *streamCall) recv() (*pluginpb.Event, error) {
	if c.operate != nil {
		return c.operate()
	}
	m, err := c.s.stream.Recv()
	if err != nil {
		if c.fresh && status.Code(err) == codes.Unimplemented {
			c.pool.old.Store(true)
			c.s.cancel()
			if err := c.fallBack(); err != nil {
				return nil, err
			}
			return c.operate()
		}
		if errors.Is(err, io.EOF) {
			return nil, errNoEnd
		}
		return nil, err
	}
	c.fresh = false
	switch m := m.GetMessage().(type) {
	case *pluginpb.OperateStreamMessage_Event:
		return m.Event, nil
	case *pluginpb.OperateStreamMessage_End:
		c.ended = true
		return nil, endFromPB(m.End)
	}
	return nil, &TransportError{Code: codes.Internal, Msg: "operation stream: a message of an unknown kind"}
}

// abort ends the operation's stream at once: the plugin's context of the
// operation ends with it.
func (c *streamCall) abort() {
	if c.s != nil {
		c.s.cancel()
	}
}

// release gives the stream back for another operation when this one
// ended cleanly (its end read, never interrupted), and closes it
// otherwise: what else it may still carry belongs to no operation.
func (c *streamCall) release(clean bool) {
	if c.operate != nil || c.s == nil {
		return
	}
	if clean && c.ended {
		c.pool.put(c.s)
		return
	}
	c.s.cancel()
}
