package pluginrpc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ExecutorServer serves an exe.Executor over gRPC, in the plugin process
// (or, for a task plugin, in the host, over the broker).
type ExecutorServer struct {
	pluginpb.UnimplementedExecutorServer
	Impl exe.Executor

	ops ops
}

// Configure passes the config section to the implementation if it takes one.
func (s *ExecutorServer) Configure(ctx context.Context, cfg *pluginpb.Config) (*pluginpb.Empty, error) {
	if c, ok := s.Impl.(Configurer); ok {
		if err := c.Configure(ctx, cfg.GetValues()); err != nil {
			return nil, toStatus(err)
		}
	}
	return &pluginpb.Empty{}, nil
}

// Operations lists what the implementation performs (exe.Capabilities).
func (s *ExecutorServer) Operations(context.Context, *pluginpb.Empty) (*pluginpb.OperationList, error) {
	out := &pluginpb.OperationList{}
	for _, op := range exe.ExecutorOperations {
		if exe.Supports(s.Impl, op) {
			out.Operates = append(out.Operates, string(op))
		}
	}
	// Which requests ValidateRequest may refuse: none without a
	// validator, those it names with a scope, else all (left unlisted).
	v, validates := s.Impl.(exe.RequestValidator)
	scope, scoped := v.(exe.ValidationScope)
	if !validates || scoped {
		out.ValidatesListed = true
		for _, op := range append(slices.Clone(exe.ExecutorOperations), exe.OpTask) {
			if validates && scope.Validates(op) {
				out.Validates = append(out.Validates, string(op))
			}
		}
	}
	if mv, ok := s.Impl.(exe.MatchVersioner); ok {
		_, out.MatchVersioned = mv.MatchVersion()
	}
	return out, nil
}

func (s *ExecutorServer) Match(ctx context.Context, req *pluginpb.MatchRequest) (*pluginpb.MatchResponse, error) {
	hosts, err := s.Impl.Match(ctx, req.GetPattern())
	if err != nil {
		return nil, toStatus(err)
	}
	// An inventory may name hosts in another encoding; a name that is not
	// UTF-8 cannot be sent, and would fail every match. The list may be
	// the implementation's own: it is copied, not changed.
	valid := make([]string, len(hosts))
	for i, h := range hosts {
		valid[i] = exe.ToValidUTF8(h)
	}
	return &pluginpb.MatchResponse{Hosts: valid}, nil
}

func (s *ExecutorServer) Health(ctx context.Context, _ *pluginpb.Empty) (*pluginpb.Empty, error) {
	if h, ok := s.Impl.(exe.HealthChecker); ok {
		if err := h.Health(ctx); err != nil {
			return nil, toStatus(err)
		}
	}
	return &pluginpb.Empty{}, nil
}

// requestFromPB decodes an OperateRequest; tasks are requests only for
// ValidateRequest, since executors do not run them.
func requestFromPB(req *pluginpb.OperateRequest, task bool) (exe.Request, error) {
	r := exe.Request{Operate: exe.Operate(req.GetOperate()), Targets: req.GetHosts(), Forks: int(req.GetForks())}
	var args any
	switch {
	case r.Operate == exe.OpService:
		args = &r.Service
	case r.Operate == exe.OpExecute:
		args = &r.Execute
	case r.Operate == exe.OpDeploy:
		args = &r.Deploy
	case r.Operate == exe.OpTask && task:
		args = &r.Task
	case r.Operate == exe.OpPing, r.Operate == exe.OpFacter:
	default:
		return r, exe.Errorf(exe.ErrNotSupported, "executor plugins do not run %q", r.Operate)
	}
	if args != nil {
		if err := json.Unmarshal(req.GetArgsJson(), args); err != nil {
			return r, exe.Errorf(exe.ErrInvalid, "%s arguments: %v", r.Operate, err)
		}
	}
	return r, nil
}

// requestToPB encodes a request's operation, hosts, arguments and forks
// (a larger forks than the field holds is as good as none).
func requestToPB(op exe.Operate, hosts []string, args any, forks int) (*pluginpb.OperateRequest, error) {
	req := &pluginpb.OperateRequest{Operate: string(op), Hosts: hosts}
	if forks > 0 && forks <= math.MaxUint32 {
		req.Forks = uint32(forks)
	}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		req.ArgsJson = b
	}
	return req, nil
}

// ValidateRequest asks the implementation, if it is an
// exe.RequestValidator, whether it would refuse the request.
func (s *ExecutorServer) ValidateRequest(ctx context.Context, req *pluginpb.OperateRequest) (*pluginpb.Empty, error) {
	v, ok := s.Impl.(exe.RequestValidator)
	if !ok {
		return &pluginpb.Empty{}, nil
	}
	r, err := requestFromPB(req, true)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := v.ValidateRequest(ctx, r); err != nil {
		return nil, toStatus(err)
	}
	return &pluginpb.Empty{}, nil
}

// Operate runs one operation and streams each event as it is emitted. The
// operation's context ends with the stream's (the host went away) or with
// a Cancel of its ID, after which the stream carries the events of the
// interruption.
func (s *ExecutorServer) Operate(req *pluginpb.OperateRequest, stream pluginpb.Executor_OperateServer) error {
	return toStatus(s.perform(stream.Context(), req, stream.Send))
}

// perform runs the operation req asks for, sending each event with send,
// under ctx (the stream's) or a Cancel of req's ID.
func (s *ExecutorServer) perform(ctx context.Context, req *pluginpb.OperateRequest, sendFn func(*pluginpb.Event) error) error {
	r, err := requestFromPB(req, false)
	if err != nil {
		return err
	}
	ctx, cancel, done := s.ops.start(ctx, req.GetId())
	defer done()
	send := &sender{send: sendFn, cancel: func() { cancel(nil) }}
	err = exe.Perform(ctx, s.Impl, nil, r, send.emit)
	if serr := send.close(); err == nil {
		err = serr
	}
	return err
}

// Cancel interrupts the operation req names, if it still runs.
func (s *ExecutorServer) Cancel(_ context.Context, req *pluginpb.CancelRequest) (*pluginpb.Empty, error) {
	s.ops.cancel(req)
	return &pluginpb.Empty{}, nil
}

// sender serialises emits onto a stream: executors emit from one goroutine
// per host. A failed send (the host went away) cancels the operation; an
// emit after the operation returned is dropped.
type sender struct {
	send   func(*pluginpb.Event) error
	cancel func()

	mu     sync.Mutex
	err    error
	closed bool
}

func (s *sender) emit(ev exe.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.err != nil {
		return
	}
	pb, err := eventToPB(ev)
	if err == nil {
		err = s.send(pb)
	}
	if err != nil {
		s.err = err
		s.cancel()
	}
}

func (s *sender) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.err
}

// ExecutorClient is an exe.Executor whose work is done by an ExecutorServer
// at the other end of a gRPC connection.
type ExecutorClient struct {
	RPC pluginpb.ExecutorClient
	// Streams, when set, carries operations on kept OperateStream
	// streams of RPC's connection; else each is an Operate call.
	Streams *OperateStreams
}

var (
	_ exe.Executor         = (*ExecutorClient)(nil)
	_ exe.RequestValidator = (*ExecutorClient)(nil)
)

// Configure sends the plugin its config section.
func (c *ExecutorClient) Configure(ctx context.Context, cfg map[string]string) error {
	_, err := c.RPC.Configure(ctx, &pluginpb.Config{Values: cfg})
	return fromStatus(ctx, err)
}

// Operations asks which operations the plugin performs. A plugin built
// before the question existed performs every operation it was asked to.
func (c *ExecutorClient) Operations(ctx context.Context) (exe.Only, error) {
	sc, err := c.OperationScope(ctx)
	return sc.Ops, err
}

// Scope is what a plugin says of itself when it starts.
type Scope struct {
	// Ops are the operations it performs.
	Ops exe.Only
	// Validates are those (task included) whose requests its
	// ValidateRequest may refuse; nil when the plugin does not say (one
	// built before the question), which means all of them.
	Validates exe.Only
	// MatchVersioned tells that its Match answers change only when it is
	// configured (exe.MatchVersioner).
	MatchVersioned bool
}

// OperationScope asks the plugin for its Scope. A plugin built before the
// question performs every operation and says nothing more.
func (c *ExecutorClient) OperationScope(ctx context.Context) (Scope, error) {
	res, err := c.RPC.Operations(ctx, &pluginpb.Empty{})
	if status.Code(err) == codes.Unimplemented {
		return Scope{Ops: append(exe.Only(nil), exe.ExecutorOperations...)}, nil
	}
	if err != nil {
		return Scope{}, fromStatus(ctx, err)
	}
	sc := Scope{Ops: exe.Only{}, MatchVersioned: res.GetMatchVersioned()}
	for _, op := range res.GetOperates() {
		sc.Ops = append(sc.Ops, exe.Operate(op))
	}
	if res.GetValidatesListed() {
		sc.Validates = exe.Only{}
		for _, op := range res.GetValidates() {
			sc.Validates = append(sc.Validates, exe.Operate(op))
		}
	}
	return sc, nil
}

func (c *ExecutorClient) Match(ctx context.Context, pattern string) ([]string, error) {
	res, err := c.RPC.Match(ctx, &pluginpb.MatchRequest{Pattern: pattern})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	hosts := res.GetHosts()
	if hosts == nil {
		hosts = []string{}
	}
	return hosts, nil
}

func (c *ExecutorClient) Health(ctx context.Context) error {
	_, err := c.RPC.Health(ctx, &pluginpb.Empty{})
	return fromStatus(ctx, err)
}

func (c *ExecutorClient) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return c.operate(ctx, exe.OpPing, hosts, nil, emit)
}

func (c *ExecutorClient) Facter(ctx context.Context, hosts []string, emit exe.Emit) error {
	return c.operate(ctx, exe.OpFacter, hosts, nil, emit)
}

func (c *ExecutorClient) Service(ctx context.Context, hosts []string, args exe.ServiceArgs, emit exe.Emit) error {
	return c.operate(ctx, exe.OpService, hosts, args, emit)
}

func (c *ExecutorClient) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	return c.operate(ctx, exe.OpExecute, hosts, args, emit)
}

func (c *ExecutorClient) Deploy(ctx context.Context, hosts []string, args exe.DeployArgs, emit exe.Emit) error {
	return c.operate(ctx, exe.OpDeploy, hosts, args, emit)
}

// ValidateRequest implements exe.RequestValidator. A plugin built before
// the call existed answers Unimplemented: it has no objections.
func (c *ExecutorClient) ValidateRequest(ctx context.Context, r exe.Request) error {
	var args any
	switch r.Operate {
	case exe.OpService:
		args = r.Service
	case exe.OpExecute:
		args = r.Execute
	case exe.OpDeploy:
		args = r.Deploy
	case exe.OpTask:
		args = r.Task
	}
	req, err := requestToPB(r.Operate, r.Targets, args, r.Forks)
	if err != nil {
		return err
	}
	_, err = c.RPC.ValidateRequest(ctx, req)
	if status.Code(err) == codes.Unimplemented {
		return nil
	}
	return fromStatus(ctx, err)
}

// operate runs op in the plugin, with the request's forks that Perform
// put in ctx.
func (c *ExecutorClient) operate(ctx context.Context, op exe.Operate, hosts []string, args any, emit exe.Emit) error {
	req, err := requestToPB(op, hosts, args, exe.ForksFrom(ctx))
	if err != nil {
		return err
	}
	return interruptible(ctx, c.RPC.Cancel, func(sctx context.Context, id string) (call, error) {
		req.Id = id
		if c.Streams != nil && !c.Streams.old.Load() {
			return c.Streams.start(sctx, req)
		}
		stream, err := c.RPC.Operate(sctx, req)
		if err != nil {
			return nil, err
		}
		return recvCall(stream.Recv), nil
	}, emit)
}

// receive delivers a stream's events to emit as they arrive.
func receive(ctx context.Context, recv func() (*pluginpb.Event, error), emit exe.Emit) error {
	for {
		pb, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromStatus(ctx, err)
		}
		ev, err := eventFromPB(pb)
		if err != nil {
			return err
		}
		emit(ev)
	}
}
