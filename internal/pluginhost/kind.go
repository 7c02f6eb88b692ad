package pluginhost

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"syscall"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/0ops/exed/internal/pluginrpc"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Kind is one kind of plugin, executor or task: what the host and its
// plugins agree on, and the gRPC glue of each side. The executor and task
// packages build their Serve and Start on theirs (Executors, Tasks).
type Kind[Impl any] struct {
	// Name is the go-plugin plugin name and the handshake's cookie
	// value: one kind is never loaded as the other.
	Name string
	// Version is the protocol version; a plugin built for another is
	// refused at start with an error that names both.
	Version uint
	// Register registers impl's shim on a plugin's gRPC server.
	Register func(impl Impl, b *plugin.GRPCBroker, s *grpc.Server)
	// Client returns the host's shim on a plugin's connection.
	Client func(b *plugin.GRPCBroker, c *grpc.ClientConn) any
}

// CookieKey is the environment variable go-plugin sets, to the kind's
// name, in every plugin process the server starts (the handshake's magic
// cookie): a process that has it was started as a plugin.
const CookieKey = "EXE_PLUGIN"

// Handshake is what the host and a plugin of the kind check before they
// talk: a plugin binary run by hand (without the cookie) says it is a
// plugin and exits.
func (k Kind[Impl]) Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{ProtocolVersion: k.Version, MagicCookieKey: CookieKey, MagicCookieValue: k.Name}
}

// Plugins is the go-plugin plugin set of the kind, serving impl on the
// plugin's side (the zero Impl on the host's).
func (k Kind[Impl]) Plugins(impl Impl) plugin.PluginSet {
	return plugin.PluginSet{k.Name: &grpcPlugin[Impl]{kind: k, impl: impl}}
}

// Serve serves impl on the process's stdio, as go-plugin does, with opts
// added to the gRPC server's options; it returns when the host is done
// with the plugin. A nil impl, whose every call would panic, is refused:
// the process says so on stderr (which the host logs) and exits 1, before
// the handshake, so that the host's start fails at once.
func (k Kind[Impl]) Serve(impl Impl, opts ...grpc.ServerOption) {
	if v := reflect.ValueOf(impl); !v.IsValid() || v.Kind() == reflect.Pointer && v.IsNil() {
		fmt.Fprintf(os.Stderr, "%s: %s.Serve needs the %s to serve, not nil\n", filepath.Base(os.Args[0]), k.Name, k.Name)
		os.Exit(1)
	}
	ignoreHUP()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: k.Handshake(),
		Plugins:         k.Plugins(impl),
		GRPCServer: func(base []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(append(base, grpc.NumStreamWorkers(StreamWorkers)), opts...))
		},
	})
}

// StreamWorkers is how many goroutines of a plugin's gRPC server serve its
// calls, each one call at a time, kept from call to call; a call that
// finds them all busy gets a goroutine of its own, as every call does
// without them. A new goroutine's stack grows to what an operation needs
// on each call (copied two or three times): a third of the sshnative
// plugin's CPU per ping, which a kept goroutine pays once. The server
// runs up to its workers' jobs at once (16 by default) and a few calls of
// its own, and go-plugin's streams (stdio, broker) keep one each for the
// life of the plugin.
const StreamWorkers = 32

// ignoreHUP keeps SIGHUP from ending the plugin: a reload is the
// server's to do (it reconfigures its plugins), and `killall -HUP exed`,
// `kill -HUP -PGID` or a closing terminal reach the plugins too, whose
// death would fail the jobs under way and could leave their commands
// running. The signal is caught rather than ignored, so that the
// commands the plugin starts get its default action back, as usual.
func ignoreHUP() {
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	go func() {
		for range hups {
			fmt.Fprintln(os.Stderr, "SIGHUP ignored: the server reloads its plugins")
		}
	}()
}

// Start starts a plugin binary of the kind (see the package Start);
// setup configures it after every start.
func (k Kind[Impl]) Start(ctx context.Context, opts Options, setup func(ctx context.Context, raw any) error) (*Process, error) {
	return Start(ctx, Config{Options: opts, Kind: k.Name, Handshake: k.Handshake(), Plugins: k.Plugins(*new(Impl)), Setup: setup})
}

// grpcPlugin is go-plugin's glue for a kind.
type grpcPlugin[Impl any] struct {
	plugin.NetRPCUnsupportedPlugin
	kind Kind[Impl]
	impl Impl
}

func (p *grpcPlugin[Impl]) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	p.kind.Register(p.impl, b, s)
	return nil
}

func (p *grpcPlugin[Impl]) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return p.kind.Client(b, c), nil
}

// Protocol versions of exed's two kinds of plugin.
const (
	ExecutorProtocol = 1
	TaskProtocol     = 1
)

// Executors and Tasks are exed's two kinds of plugin. A task's run reaches
// the server's executor over go-plugin's broker.
var (
	Executors = Kind[exe.Executor]{Name: "executor", Version: ExecutorProtocol,
		Register: func(x exe.Executor, _ *plugin.GRPCBroker, s *grpc.Server) {
			pluginpb.RegisterExecutorServer(s, &pluginrpc.ExecutorServer{Impl: x})
		},
		Client: func(_ *plugin.GRPCBroker, c *grpc.ClientConn) any {
			// The streams are this connection's: a restarted plugin
			// is dispensed anew, with none.
			rpc := pluginpb.NewExecutorClient(c)
			return &pluginrpc.ExecutorClient{RPC: rpc, Streams: pluginrpc.NewOperateStreams(rpc)}
		}}
	Tasks = Kind[exe.Task]{Name: "task", Version: TaskProtocol,
		Register: func(t exe.Task, b *plugin.GRPCBroker, s *grpc.Server) {
			pluginpb.RegisterTaskServer(s, &pluginrpc.TaskServer{Impl: t, Broker: b})
		},
		Client: func(b *plugin.GRPCBroker, c *grpc.ClientConn) any {
			return &pluginrpc.TaskClient{RPC: pluginpb.NewTaskClient(c), Broker: b}
		}}
)
