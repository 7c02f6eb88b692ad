// Package executor runs exe.Executor implementations as plugin processes
// (hashicorp/go-plugin, gRPC protocol, AutoMTLS). A plugin's main calls
// Serve; the server starts the binary with Start and uses the returned
// Client as any other exe.Executor. Each operation's events cross the
// process boundary on a gRPC stream, one message per event as the plugin
// emits it (a stream kept from one operation to the next, see
// docs/plugins.md), and cancelling the caller's context cancels the work
// in the plugin.
package executor

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginhost"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/0ops/exed/internal/pluginrpc"
	"github.com/hashicorp/go-plugin"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
)

// Configurer is implemented by executors that take a config section: Serve
// passes them the key/values of their section of exed.conf before the
// first operation, and an error fails the server's start.
type Configurer = pluginrpc.Configurer

// Gatherer is implemented by executors that have metrics of their own
// (prometheus.Gatherer: a *prometheus.Registry is one, and so is the
// sshnative plugin). The server asks for them at each scrape of its
// metrics (Client.Metrics) and serves them among its own, each with the
// label plugin="NAME".
type Gatherer = pluginrpc.Gatherer

// PluginSet is go-plugin's plugin set for an executor plugin serving impl,
// for a program that runs go-plugin itself; Serve and Start do it for
// the rest.
func PluginSet(impl exe.Executor) plugin.PluginSet { return kind.Plugins(impl) }

// Serve serves impl as an executor plugin on the process's stdio, as
// go-plugin does; it returns when the host is done with the plugin. Call
// it from main, and print nothing on stdout before it.
//
// When the host stops the plugin (Client.Shutdown), every operation is
// cancelled, and Serve returns only once they have all returned, then
// closes impl if it is an io.Closer: an executor ends its commands on
// cancel, and the process must not exit before it has.
func Serve(impl exe.Executor) {
	var ops inflight
	kind.Serve(impl, grpc.ChainUnaryInterceptor(ops.unary), grpc.ChainStreamInterceptor(ops.stream))
	ops.wait()
	if c, ok := impl.(io.Closer); ok {
		_ = c.Close()
	}
}

// ProtocolVersion is the version of the executor plugin protocol. A plugin
// built for another version is refused at start with an error that names
// both versions.
const ProtocolVersion = pluginhost.ExecutorProtocol

// kind is what exed and executor plugins agree on, and their gRPC glue.
var kind = pluginhost.Executors

// Handshake is what exed and an executor plugin check before they talk: a
// plugin binary run by hand (without the cookie) says it is a plugin and
// exits.
var Handshake = kind.Handshake()

// StateDir is the directory the server keeps for this plugin, the same for
// each of its starts and the server's next run (from the environment
// variable EXE_PLUGIN_STATE_DIR), or "" when the server gives none. A
// plugin records there what it must clean up should it die: the sshnative
// executor, the commands it runs. The directory may not exist yet.
func StateDir() string { return os.Getenv(pluginhost.StateDirEnv) }

// executorMethods prefixes the gRPC methods of the executor service, the
// ones Serve waits for (go-plugin's own services never end by themselves).
var executorMethods = "/" + pluginpb.Executor_ServiceDesc.ServiceName + "/"

// inflight counts the executor calls a plugin serves.
type inflight struct{ wg sync.WaitGroup }

func (f *inflight) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, executorMethods) {
		f.wg.Add(1)
		defer f.wg.Done()
	}
	return h(ctx, req)
}

func (f *inflight) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, executorMethods) {
		f.wg.Add(1)
		defer f.wg.Done()
	}
	return h(srv, ss)
}

// wait returns once no call is in flight; the gRPC server has stopped, so
// none can begin.
func (f *inflight) wait() { f.wg.Wait() }

// Options say which plugin binary to start and how: its Name (in
// messages, in log lines, where its stderr and hclog output appear under
// it in Logger), Path, Args and Env (added to the server's), its Config
// section (sent after every start) and its StateDir (see StateDir; the
// same across its restarts and the server's; empty: none).
type Options = pluginhost.Options

// Client is an exe.Executor backed by a plugin process. The process starts
// on Start; when it dies, the calls it was serving fail with an error that
// names the plugin and its exit (and hosts that had no event get a FAILED
// one saying their command may still be running), and it is started again
// at once, so that it can end what the dead process left running.
type Client struct {
	proc *pluginhost.Process
	ops  atomic.Pointer[exe.Only] // asked after every start
	// validates is what the plugin's ValidateRequest may refuse, asked
	// with ops; nil: every request.
	validates atomic.Pointer[exe.Only]
	config    map[string]string
	// matchVersion grows after every configuration of the plugin (each
	// start, each Reconfigure).
	matchVersion atomic.Uint64
	configured   atomic.Uint64 // configurations so far
	// versioned: the plugin said, when it last started, that its Match
	// answers change only when it is configured.
	versioned atomic.Bool
	// unsure: the last Reconfigure ended without the plugin's answer (its
	// context ended, the connection broke), so the plugin may still be
	// loading, and replace its inventory at any time: its answers are
	// not kept until a configuration ends with one.
	unsure atomic.Bool
}

var (
	_ exe.Executor         = (*Client)(nil)
	_ exe.RequestValidator = (*Client)(nil)
	_ exe.ValidationScope  = (*Client)(nil)
	_ exe.MatchVersioner   = (*Client)(nil)
)

// Start starts the plugin and configures it: a binary that is not a
// plugin, speaks another protocol version or refuses its config is an
// error here, not at the first job.
func Start(ctx context.Context, opts Options) (*Client, error) {
	c := &Client{config: opts.Config}
	proc, err := kind.Start(ctx, opts, func(ctx context.Context, raw any) error {
		x := raw.(*pluginrpc.ExecutorClient)
		if err := x.Configure(ctx, opts.Config); err != nil {
			return err
		}
		sc, err := x.OperationScope(ctx)
		if err != nil {
			return err
		}
		c.ops.Store(&sc.Ops)
		if sc.Validates != nil {
			c.validates.Store(&sc.Validates)
		} else {
			c.validates.Store(nil)
		}
		c.versioned.Store(sc.MatchVersioned)
		c.configuredAs(true)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.proc = proc
	return c, nil
}

// Supports implements exe.Capabilities with what the plugin said it
// performs when it last started.
func (c *Client) Supports(op exe.Operate) bool {
	if ops := c.ops.Load(); ops != nil {
		return ops.Supports(op)
	}
	return true
}

// Validates implements exe.ValidationScope with what the plugin said when
// it last started: the Engine asks its ValidateRequest only about those
// operations' requests (about all of them when it did not say).
func (c *Client) Validates(op exe.Operate) bool {
	if v := c.validates.Load(); v != nil {
		return v.Supports(op)
	}
	return true
}

func (c *Client) get(ctx context.Context) (*pluginrpc.ExecutorClient, error) {
	raw, err := c.proc.Dispense(ctx)
	if err != nil {
		return nil, err
	}
	return raw.(*pluginrpc.ExecutorClient), nil
}

// Reconfigure sends the plugin its config section again, as after each
// start, so that it re-reads what the section points at: exed does it on
// SIGHUP, and the sshnative plugin then reloads its inventory. A plugin
// that refuses (a file that no longer loads) keeps the configuration it
// had, and the error says why.
func (c *Client) Reconfigure(ctx context.Context) error {
	err := c.call(ctx, func(x *pluginrpc.ExecutorClient) error { return x.Configure(ctx, c.config) })
	// Whether or not the plugin took it, its answers may have changed
	// (it may have loaded part of it, or have been started again); when
	// the call ended without its answer, the plugin may still replace
	// its inventory later (a slow inventory script), unseen.
	var transport *pluginrpc.TransportError
	c.configuredAs(ctx.Err() == nil && !errors.As(err, &transport))
	return err
}

// configuredAs starts a new MatchVersion once the plugin was configured;
// answered tells whether the configuration ended with the plugin's answer.
func (c *Client) configuredAs(answered bool) {
	if !answered {
		// Before the version grows: from here on no answer is kept.
		c.unsure.Store(true)
	}
	n := c.configured.Add(1)
	// Concurrent configurations (a Reconfigure during a restart) store
	// the larger version: it only ever grows.
	for {
		v := c.matchVersion.Load()
		if v >= n || c.matchVersion.CompareAndSwap(v, n) {
			break
		}
	}
	if answered {
		// After the version grew: an answer kept from here on is one
		// asked after the configuration.
		c.unsure.Store(false)
	}
}

// MatchVersion implements exe.MatchVersioner for a plugin that said its
// Match answers change only when it is configured: the version grows
// after each start of the plugin and each Reconfigure. It is not ok for
// another plugin, nor after a Reconfigure that ended without the
// plugin's answer, until the plugin is configured again.
func (c *Client) MatchVersion() (uint64, bool) {
	if !c.versioned.Load() || c.unsure.Load() {
		return 0, false
	}
	return c.matchVersion.Load(), true
}

// Match implements exe.Executor.
func (c *Client) Match(ctx context.Context, pattern string) ([]string, error) {
	x, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	hosts, err := x.Match(ctx, pattern)
	return hosts, c.proc.Explain(err)
}

// Ping implements exe.Executor.
func (c *Client) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return c.operate(ctx, hosts, emit, func(x *pluginrpc.ExecutorClient, emit exe.Emit) error { return x.Ping(ctx, hosts, emit) })
}

// Facter implements exe.Executor.
func (c *Client) Facter(ctx context.Context, hosts []string, emit exe.Emit) error {
	return c.operate(ctx, hosts, emit, func(x *pluginrpc.ExecutorClient, emit exe.Emit) error { return x.Facter(ctx, hosts, emit) })
}

// Service implements exe.Executor.
func (c *Client) Service(ctx context.Context, hosts []string, args exe.ServiceArgs, emit exe.Emit) error {
	return c.operate(ctx, hosts, emit, func(x *pluginrpc.ExecutorClient, emit exe.Emit) error {
		return x.Service(ctx, hosts, args, emit)
	})
}

// Execute implements exe.Executor.
func (c *Client) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	return c.operate(ctx, hosts, emit, func(x *pluginrpc.ExecutorClient, emit exe.Emit) error {
		return x.Execute(ctx, hosts, args, emit)
	})
}

// Deploy implements exe.Executor.
func (c *Client) Deploy(ctx context.Context, hosts []string, args exe.DeployArgs, emit exe.Emit) error {
	return c.operate(ctx, hosts, emit, func(x *pluginrpc.ExecutorClient, emit exe.Emit) error {
		return x.Deploy(ctx, hosts, args, emit)
	})
}

// operate runs an operation in the plugin. When the plugin dies or its
// connection breaks during it, each host that has no event yet gets a
// FAILED one that says so: its command may have started and nobody can
// tell whether it ended.
func (c *Client) operate(ctx context.Context, hosts []string, emit exe.Emit, fn func(*pluginrpc.ExecutorClient, exe.Emit) error) error {
	x, err := c.get(ctx)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	err = fn(x, func(ev exe.Event) {
		mu.Lock()
		seen[ev.Host] = true
		mu.Unlock()
		emit(ev)
	})
	if err == nil {
		return nil
	}
	if !isTransport(err) || ctx.Err() != nil {
		return c.proc.Explain(err)
	}
	err = c.proc.Explain(err)
	mu.Lock()
	defer mu.Unlock()
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			emit(exe.Event{Host: h, Status: exe.HostFailed, Msg: exe.PublicMessage(err) + "; the remote command may still be running"})
		}
	}
	return err
}

// isTransport reports whether err is the plugin connection's failure. A
// function of its own so that the target of errors.As, which escapes,
// is allocated only for an operation that failed.
func isTransport(err error) bool {
	var transport *pluginrpc.TransportError
	return errors.As(err, &transport)
}

// ValidateRequest implements exe.RequestValidator: it asks the plugin
// whether it would refuse req. A plugin built before the call existed, or
// one whose executor does not implement it, has no objections.
func (c *Client) ValidateRequest(ctx context.Context, req exe.Request) error {
	return c.call(ctx, func(x *pluginrpc.ExecutorClient) error { return x.ValidateRequest(ctx, req) })
}

// Health asks the plugin (starting it if it is not running).
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, func(x *pluginrpc.ExecutorClient) error { return x.Health(ctx) })
}

func (c *Client) call(ctx context.Context, fn func(*pluginrpc.ExecutorClient) error) error {
	x, err := c.get(ctx)
	if err != nil {
		return err
	}
	return c.proc.Explain(fn(x))
}

// PID is the plugin process's ID while it runs, or 0.
func (c *Client) PID() int { return c.proc.PID() }

// Metrics gathers the plugin's own metrics (see Gatherer) through the
// plugin protocol. A plugin that has none, or was built before the call
// existed, answers nil and no error.
func (c *Client) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	var mfs []*dto.MetricFamily
	err := c.call(ctx, func(x *pluginrpc.ExecutorClient) (err error) {
		mfs, err = x.Metrics(ctx)
		return err
	})
	return mfs, err
}

// Restarts is how many times the plugin was started again after its
// process ended (it crashed, or was killed).
func (c *Client) Restarts() int64 { return c.proc.Restarts() }

// Shutdown stops the plugin: its operations are cancelled and, for a
// plugin served by Serve, end (with the commands they ran) before it
// exits. It waits for that until ctx is done, then kills the plugin.
func (c *Client) Shutdown(ctx context.Context) error { return c.proc.Shutdown(ctx) }

// Close kills the plugin process.
func (c *Client) Close() error { return c.proc.Close() }
