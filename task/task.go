// Package task runs exe.Task implementations, such as a rolling restart,
// as plugin processes (hashicorp/go-plugin, gRPC protocol, AutoMTLS). A
// task plugin's main calls Serve; the server starts the binary with Start.
// A task drives the server's executor (itself possibly another plugin
// process): for each run the server serves it to the plugin over
// go-plugin's GRPCBroker, for as long as the run lasts.
package task

import (
	"context"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginhost"
	"github.com/0ops/exed/internal/pluginrpc"
	"github.com/hashicorp/go-plugin"
	dto "github.com/prometheus/client_model/go"
)

// ProtocolVersion is the version of the task plugin protocol.
const ProtocolVersion = pluginhost.TaskProtocol

// kind is what exed and task plugins agree on, and their gRPC glue.
var kind = pluginhost.Tasks

// Handshake is what exed and a task plugin check before they talk. Its
// cookie differs from executors', so one kind is never loaded as the other.
var Handshake = kind.Handshake()

// Configurer is implemented by tasks that take a config section.
type Configurer = pluginrpc.Configurer

// Gatherer is implemented by tasks that have metrics of their own, as
// executors do (see executor.Gatherer).
type Gatherer = pluginrpc.Gatherer

// PluginSet is go-plugin's plugin set for a task plugin serving impl, for
// a program that runs go-plugin itself; Serve and Start do it for the
// rest.
func PluginSet(impl exe.Task) plugin.PluginSet { return kind.Plugins(impl) }

// Serve serves impl as a task plugin on the process's stdio; call it from
// main, and print nothing on stdout before it.
func Serve(impl exe.Task) { kind.Serve(impl) }

// Options say which plugin binary to start and how, as for executor
// plugins (see executor.Options).
type Options = pluginhost.Options

// Client is an exe.Task backed by a plugin process, started again as soon
// as it dies.
type Client struct {
	proc *pluginhost.Process
}

var _ exe.Task = (*Client)(nil)

// Start starts the plugin and configures it; a plugin that cannot start,
// speaks another protocol version or refuses its config is an error here.
func Start(ctx context.Context, opts Options) (*Client, error) {
	proc, err := kind.Start(ctx, opts, func(ctx context.Context, raw any) error {
		return raw.(*pluginrpc.TaskClient).Configure(ctx, opts.Config)
	})
	if err != nil {
		return nil, err
	}
	return &Client{proc: proc}, nil
}

// Info implements exe.Task.
func (c *Client) Info(ctx context.Context) (exe.TaskInfo, error) {
	raw, err := c.proc.Dispense(ctx)
	if err != nil {
		return exe.TaskInfo{}, err
	}
	info, err := raw.(*pluginrpc.TaskClient).Info(ctx)
	return info, c.proc.Explain(err)
}

// Run implements exe.Task: exec is served to the plugin for the run.
func (c *Client) Run(ctx context.Context, exec exe.Executor, hosts []string, args exe.TaskArgs, emit exe.Emit) error {
	raw, err := c.proc.Dispense(ctx)
	if err != nil {
		return err
	}
	return c.proc.Explain(raw.(*pluginrpc.TaskClient).Run(ctx, exec, hosts, args, emit))
}

// PID is the plugin process's ID while it runs, or 0.
func (c *Client) PID() int { return c.proc.PID() }

// Metrics gathers the plugin's own metrics through the plugin protocol;
// nil and no error from a plugin that has none or was built before the
// call existed.
func (c *Client) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	raw, err := c.proc.Dispense(ctx)
	if err != nil {
		return nil, err
	}
	mfs, err := raw.(*pluginrpc.TaskClient).Metrics(ctx)
	return mfs, c.proc.Explain(err)
}

// Restarts is how many times the plugin was started again after its
// process ended.
func (c *Client) Restarts() int64 { return c.proc.Restarts() }

// Shutdown stops the plugin, its runs cancelled; it waits for the process
// to exit until ctx is done, then kills it.
func (c *Client) Shutdown(ctx context.Context) error { return c.proc.Shutdown(ctx) }

// Close kills the plugin process.
func (c *Client) Close() error { return c.proc.Close() }
