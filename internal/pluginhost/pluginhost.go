// Package pluginhost runs one plugin binary for the server through
// go-plugin: started on first use, configured after every start, started
// again as soon as it dies (so that it can clean up after itself: the
// sshnative executor ends the commands it left running), and stopped on
// Shutdown or killed on Close. It is shared by the executor and task
// packages, which add the typed interface on top.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginrpc"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Options say which plugin binary to start and how: the executor and
// task packages' Options.
type Options struct {
	// Name is the plugin's name ("sshnative", "rollingrestart"): in
	// messages, in log lines (the plugin's stderr and hclog output
	// appear in Logger under this name), and its config section.
	Name string
	// Path and Args are the binary and its arguments.
	Path string
	Args []string
	// Env is added to the server's environment for the plugin.
	Env []string
	// Config is the plugin's config section, sent after every start.
	Config map[string]string
	// StateDir is given to the plugin in StateDirEnv: a directory that
	// stays the same across its restarts and the server's next run, where
	// it records what it must clean up should it die. Empty: none.
	StateDir string
	Logger   hclog.Logger
}

// Config describes the plugin process.
type Config struct {
	Options
	// Kind says what it is in messages and logs ("executor plugin
	// sshnative").
	Kind      string
	Handshake plugin.HandshakeConfig
	// Plugins is the go-plugin plugin set; Dispense takes Kind from it.
	Plugins plugin.PluginSet
	// Setup runs after every start with the dispensed interface (it
	// configures the plugin); an error stops the process.
	Setup func(ctx context.Context, raw any) error
}

// StateDirEnv is the environment variable that gives a plugin its state
// directory (Config.StateDir).
const StateDirEnv = "EXE_PLUGIN_STATE_DIR"

// Restarting a plugin that died: at once if it had run for shortLife;
// otherwise after restartMin, a delay that doubles up to restartMax while
// it keeps dying that soon after its start.
const (
	restartMin   = time.Second
	restartMax   = time.Minute
	shortLife    = 10 * time.Second
	exitPollTime = 250 * time.Millisecond
)

// Process is one managed plugin process.
type Process struct {
	cfg Config

	mu      sync.Mutex
	client  *plugin.Client
	cmd     *exec.Cmd
	raw     any
	closed  bool
	started time.Time
	backoff time.Duration
	stop    chan struct{} // closed by Shutdown and Close
	starts  atomic.Int64  // processes started and configured
}

// Start returns a Process whose plugin has started and been configured:
// a binary that is not a plugin, speaks another protocol version or
// refuses its config is an error here, not at the first call.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	p := &Process{cfg: cfg, stop: make(chan struct{})}
	if _, err := p.Dispense(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Process) label() string { return p.cfg.Kind + " plugin " + p.cfg.Name }

// Dispense returns the dispensed interface of a running, configured
// process, starting one (and configuring it) when there is none or the
// last one exited: every call may start a process.
func (p *Process) Dispense(ctx context.Context) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, exe.Errorf(exe.ErrUnavailable, "%s: shut down", p.label())
	}
	if p.client != nil && !p.client.Exited() {
		return p.raw, nil
	}
	if p.client != nil {
		p.cfg.Logger.Warn("plugin exited; starting it again", "plugin", p.cfg.Name, "exit", exitText(p.cmd))
		p.client.Kill()
	}
	p.client, p.raw = nil, nil
	// Each start needs a fresh exec.Cmd.
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Env = append(cmd.Environ(), p.cfg.Env...)
	if p.cfg.StateDir != "" {
		cmd.Env = append(cmd.Env, StateDirEnv+"="+p.cfg.StateDir)
	}
	dieWithParent(cmd)
	logger := p.cfg.Logger.Named(p.cfg.Name)
	// What the plugin writes to stdout and stderr after go-plugin took them
	// over (its hclog loggers write there) arrives here in chunks: into
	// the log a line at a time, in the server's format.
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  p.cfg.Handshake,
		Plugins:          p.cfg.Plugins,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Managed:          true,
		Logger:           logger,
		SyncStdout:       newLogLines(logger, p.cfg.Name),
		SyncStderr:       newLogLines(logger, p.cfg.Name),
		StartTimeout:     30 * time.Second,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		// The binary's path and go-plugin's text go to the log, not to
		// clients: the public text names the plugin.
		return nil, exe.WithCause(exe.ErrUnavailable, fmt.Errorf("start %s: %w", cmd.Path, err), "%s could not be started", p.label())
	}
	raw, err := rpc.Dispense(p.cfg.Kind)
	if err != nil {
		client.Kill()
		return nil, exe.WithCause(exe.ErrUnavailable, err, "%s could not be started", p.label())
	}
	if p.cfg.Setup != nil {
		if err := p.cfg.Setup(ctx, raw); err != nil {
			client.Kill()
			return nil, fmt.Errorf("%s: %w", p.label(), err)
		}
	}
	p.client, p.cmd, p.raw = client, cmd, raw
	p.started = time.Now()
	p.starts.Add(1)
	go p.watch(client)
	return raw, nil
}

// watch starts the plugin again as soon as client's process exits, rather
// than on the next call: a plugin that died may have left work to clean
// up (the sshnative executor ends the commands it ran), and nothing else
// would start it while no job comes. A plugin that keeps dying soon after
// it starts is started again after a growing delay; one that fails to
// start is left to the next call.
func (p *Process) watch(client *plugin.Client) {
	// go-plugin offers no exit channel; Exited is a cheap flag read.
	t := time.NewTicker(exitPollTime)
	defer t.Stop()
	for !client.Exited() {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
	p.mu.Lock()
	if p.closed || p.client != client {
		p.mu.Unlock()
		return
	}
	delay := time.Duration(0)
	if time.Since(p.started) < shortLife {
		p.backoff = min(max(2*p.backoff, restartMin), restartMax)
		delay = p.backoff
	} else {
		p.backoff = 0
	}
	p.mu.Unlock()
	if delay > 0 {
		select {
		case <-p.stop:
			return
		case <-time.After(delay):
		}
	}
	if _, err := p.Dispense(context.Background()); err != nil {
		p.cfg.Logger.Error("plugin could not be started again; the next call tries again", "plugin", p.cfg.Name, "error", err)
	}
}

// Explain turns a failed call into what happened: when the process died
// (or dies within a moment: the call usually notices the broken connection
// before go-plugin reaps the process), an error naming the plugin and its
// exit; otherwise err unchanged.
func (p *Process) Explain(err error) error {
	if err == nil {
		return nil // the target of errors.As below escapes: no allocation per call
	}
	var transport *pluginrpc.TransportError
	if !errors.As(err, &transport) {
		return err
	}
	p.mu.Lock()
	client, cmd := p.client, p.cmd
	p.mu.Unlock()
	if client == nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for !client.Exited() {
		if time.Now().After(deadline) {
			return exe.WithCause(exe.ErrUnavailable, transport, "%s: connection lost", p.label())
		}
		time.Sleep(10 * time.Millisecond) // go-plugin offers no exit channel
	}
	return exe.Errorf(exe.ErrUnavailable, "%s exited (%s)", p.label(), exitText(cmd))
}

// exitText describes how cmd ended; call it once the process has exited.
func exitText(cmd *exec.Cmd) string {
	if cmd == nil || cmd.ProcessState == nil {
		return "exit unknown"
	}
	return cmd.ProcessState.String()
}

// Restarts is how many times the plugin was started again after its
// process ended (died, was killed, or exited by itself): the processes
// started and configured after the first.
func (p *Process) Restarts() int64 { return max(p.starts.Load()-1, 0) }

// PID is the running process's ID, or 0.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil || p.client.Exited() || p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Shutdown refuses further calls and asks the plugin to stop: its gRPC
// server stops, which cancels what it is doing, and a plugin served by
// this module's SDK exits once its operations have returned (for the
// sshnative executor: once the commands they ran have ended). Shutdown
// waits for the process to exit; when ctx is done first, it kills it and
// returns ctx's error.
func (p *Process) Shutdown(ctx context.Context) error {
	client := p.close()
	if client == nil {
		return nil
	}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil
	}
	// What go-plugin's Kill does first, but Kill then gives the plugin
	// two seconds: too few for commands to end. Kill is called only for a
	// plugin that did not exit: after this Close its own Close fails, and
	// it would log that the plugin "failed to exit gracefully" at every
	// clean shutdown. A plugin that exited needs nothing more: go-plugin's
	// goroutines end with the process and its output.
	_ = rpc.Close()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !client.Exited() {
		select {
		case <-ctx.Done():
			p.cfg.Logger.Warn("plugin did not stop in time; killing it", "plugin", p.cfg.Name)
			client.Kill()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Close kills the process (gracefully first, as go-plugin does) and
// refuses further calls.
func (p *Process) Close() error {
	if client := p.close(); client != nil {
		client.Kill()
	}
	return nil
}

// close marks p closed and returns the client it held, if any.
func (p *Process) close() *plugin.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	client := p.client
	p.client = nil
	return client
}
