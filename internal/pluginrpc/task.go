package pluginrpc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// TaskServer serves an exe.Task in the plugin process. The executor the
// task drives is the host's, reached through the go-plugin broker.
type TaskServer struct {
	pluginpb.UnimplementedTaskServer
	Impl   exe.Task
	Broker *plugin.GRPCBroker

	runs ops
}

// Configure passes the config section to the implementation if it takes one.
func (s *TaskServer) Configure(ctx context.Context, cfg *pluginpb.Config) (*pluginpb.Empty, error) {
	if c, ok := s.Impl.(Configurer); ok {
		if err := c.Configure(ctx, cfg.GetValues()); err != nil {
			return nil, toStatus(err)
		}
	}
	return &pluginpb.Empty{}, nil
}

func (s *TaskServer) Info(ctx context.Context, _ *pluginpb.Empty) (*pluginpb.TaskInfo, error) {
	info, err := s.Impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	opts, err := json.Marshal(info.Options)
	if err != nil {
		return nil, toStatus(fmt.Errorf("task options schema: %w", err))
	}
	return &pluginpb.TaskInfo{Type: exe.ToValidUTF8(info.Type), Description: exe.ToValidUTF8(info.Description), OptionsJson: opts}, nil
}

// Run dials the host's executor on the broker and runs the task with it,
// streaming the task's events.
func (s *TaskServer) Run(req *pluginpb.RunRequest, stream pluginpb.Task_RunServer) error {
	var args exe.TaskArgs
	if err := json.Unmarshal(req.GetArgsJson(), &args); err != nil {
		return toStatus(exe.Errorf(exe.ErrInvalid, "task arguments: %v", err))
	}
	conn, err := s.Broker.Dial(req.GetExecutor())
	if err != nil {
		return toStatus(fmt.Errorf("reach the server's executor: %w", err))
	}
	defer conn.Close()
	ctx, cancel, done := s.runs.start(stream.Context(), req.GetId())
	defer done()
	send := &sender{send: stream.Send, cancel: func() { cancel(nil) }}
	err = s.Impl.Run(ctx, &ExecutorClient{RPC: pluginpb.NewExecutorClient(conn)}, req.GetHosts(), args, send.emit)
	if serr := send.close(); err == nil {
		err = serr
	}
	return toStatus(err)
}

// Cancel interrupts the run req names, if it still runs: the task's
// context ends, and so do the executor calls it makes with it.
func (s *TaskServer) Cancel(_ context.Context, req *pluginpb.CancelRequest) (*pluginpb.Empty, error) {
	s.runs.cancel(req)
	return &pluginpb.Empty{}, nil
}

// TaskClient is an exe.Task run by a TaskServer in a plugin process.
type TaskClient struct {
	RPC    pluginpb.TaskClient
	Broker *plugin.GRPCBroker
}

var _ exe.Task = (*TaskClient)(nil)

// Configure sends the plugin its config section.
func (c *TaskClient) Configure(ctx context.Context, cfg map[string]string) error {
	_, err := c.RPC.Configure(ctx, &pluginpb.Config{Values: cfg})
	return fromStatus(ctx, err)
}

func (c *TaskClient) Info(ctx context.Context) (exe.TaskInfo, error) {
	res, err := c.RPC.Info(ctx, &pluginpb.Empty{})
	if err != nil {
		return exe.TaskInfo{}, fromStatus(ctx, err)
	}
	info := exe.TaskInfo{Type: res.GetType(), Description: res.GetDescription()}
	if len(res.GetOptionsJson()) > 0 {
		if err := json.Unmarshal(res.GetOptionsJson(), &info.Options); err != nil {
			return exe.TaskInfo{}, fmt.Errorf("task %s: options schema: %w", info.Type, err)
		}
	}
	return info, nil
}

// Run serves exec to the plugin on a new broker stream for the length of
// the run, and delivers the task's events as they arrive.
func (c *TaskClient) Run(ctx context.Context, exec exe.Executor, hosts []string, args exe.TaskArgs, emit exe.Emit) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	id := c.Broker.NextId()
	servers := make(chan *grpc.Server, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		c.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(opts...)
			pluginpb.RegisterExecutorServer(s, &ExecutorServer{Impl: exec})
			servers <- s
			return s
		})
	}()
	// The executor is served only while this run lasts.
	defer func() {
		select {
		case s := <-servers:
			s.Stop()
		case <-served:
		}
		<-served
	}()
	return interruptible(ctx, c.RPC.Cancel, func(sctx context.Context, runID string) (call, error) {
		stream, err := c.RPC.Run(sctx, &pluginpb.RunRequest{Executor: id, Hosts: hosts, ArgsJson: b, Id: runID})
		if err != nil {
			return nil, err
		}
		return recvCall(stream.Recv), nil
	}, emit)
}
