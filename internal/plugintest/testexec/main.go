// Command testexec serves plugintest.Executor as an executor plugin, for
// exed's own tests. EXE_TESTPLUGIN_PROTOCOL=N makes it speak protocol
// version N, for the version-mismatch test; EXE_TESTPLUGIN_OLD=1 makes it
// a plugin built before the ValidateRequest, Metrics and OperateStream
// calls, which answers them Unimplemented and does not say what it
// validates; EXE_TESTPLUGIN_NIL=1 makes it serve a nil executor.
package main

import (
	"context"
	"errors"
	"os"
	"strconv"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/0ops/exed/internal/pluginrpc"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

func main() {
	// A plugin's hclog output goes to the stderr it started with, in
	// JSON, which the server parses into its own log.
	impl := &plugintest.Executor{Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true})}
	if v := os.Getenv("EXE_TESTPLUGIN_PROTOCOL"); v != "" {
		n, _ := strconv.Atoi(v)
		hs := executor.Handshake
		hs.ProtocolVersion = uint(n)
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: hs, GRPCServer: plugin.DefaultGRPCServer,
			Plugins: executor.PluginSet(impl)})
		return
	}
	if os.Getenv("EXE_TESTPLUGIN_NIL") == "1" {
		var none *plugintest.Executor
		executor.Serve(none)
		return
	}
	if os.Getenv("EXE_TESTPLUGIN_OLD") == "1" {
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: executor.Handshake, GRPCServer: plugin.DefaultGRPCServer,
			Plugins: plugin.PluginSet{"executor": &oldPlugin{impl: impl}}})
		return
	}
	executor.Serve(impl)
}

// oldPlugin serves the executor service as a plugin built before the
// ValidateRequest, Metrics and OperateStream calls did: without those
// methods, which gRPC then answers Unimplemented ("unknown method").
type oldPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl exe.Executor
}

func (p *oldPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	desc := pluginpb.Executor_ServiceDesc
	desc.Methods = nil
	for _, m := range pluginpb.Executor_ServiceDesc.Methods {
		if m.MethodName != "ValidateRequest" && m.MethodName != "Metrics" {
			desc.Methods = append(desc.Methods, m)
		}
	}
	desc.Streams = nil
	for _, st := range pluginpb.Executor_ServiceDesc.Streams {
		if st.StreamName != "OperateStream" {
			desc.Streams = append(desc.Streams, st)
		}
	}
	s.RegisterService(&desc, oldServer{&pluginrpc.ExecutorServer{Impl: p.impl}})
	return nil
}

// oldServer answers Operations as a plugin built before it listed what
// ValidateRequest checks.
type oldServer struct{ *pluginrpc.ExecutorServer }

func (s oldServer) Operations(ctx context.Context, e *pluginpb.Empty) (*pluginpb.OperationList, error) {
	out, err := s.ExecutorServer.Operations(ctx, e)
	if out != nil {
		out = &pluginpb.OperationList{Operates: out.Operates}
	}
	return out, err
}

func (p *oldPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("testexec: plugin side only")
}
