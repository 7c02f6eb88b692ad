package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/loader"
	exeprom "github.com/0ops/exed/prometheus"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// pluginGrace bounds how long shutdown waits for the plugins to end what
// they were doing (the executor: the commands of cancelled operations,
// HUP, TERM, then KILL to each process group) before it kills them.
const pluginGrace = 30 * time.Second

// process is what the server and the worker both are: a process that stops
// on SIGTERM or SIGINT, logs to [log] error_log, and runs an Engine on
// the configured job backend and plugins.
type process struct {
	name   string // in messages: "exed", "exed worker"
	cfg    *config.Config
	stderr io.Writer
	sigs   chan os.Signal
	hups   chan os.Signal
	// logFiles are the log files opened by name, reopened on SIGHUP.
	logFiles []*logFile
	// logWriters write the server log and the access log.
	logWriters []*logWriter
	log        hclog.Logger
	backend    *backend
	plugins    *loader.Set
	disp       exe.Dispatcher
	engine     *exe.Engine
	status     string               // what sdReady last said: said again after a reload
	reg        *prometheus.Registry // what GET /metrics serves
	metrics    *exeprom.Metrics     // the Engine's and the API's Observer
	closers    []func()             // run by close, last first
}

// startProcess begins a process: before anything else it takes SIGTERM and
// SIGINT (one that arrives while it starts must still stop it gracefully,
// not kill it) and SIGHUP (which must not end it, its default action),
// then opens the error log and logs the configuration's warnings. nil and
// the exit code when it cannot; close releases what it opened.
func startProcess(name, logName string, cfg *config.Config, warnings []string, stderr io.Writer) (*process, int) {
	p := &process{name: name, cfg: cfg, stderr: stderr, sigs: make(chan os.Signal, 2), hups: earlyHUPs}
	signal.Notify(p.sigs, syscall.SIGTERM, syscall.SIGINT)
	if p.hups == nil {
		p.hups = make(chan os.Signal, 1)
	}
	earlyHUPs = nil
	signal.Notify(p.hups, syscall.SIGHUP)
	p.closers = append(p.closers, func() { signal.Stop(p.sigs); signal.Stop(p.hups) })
	errOut, err := p.openLog(cfg.Log.ErrorLog, stderr)
	if err != nil {
		code := p.fail(exitUsage, "[log] error_log: %v", err)
		p.close()
		return nil, code
	}
	p.log = hclog.New(&hclog.LoggerOptions{Name: logName, Level: hclog.LevelFromString(cfg.Log.Level), Output: errOut,
		JSONFormat: cfg.Log.Format == "json"})
	libraryLogs(p.log)
	for _, w := range warnings {
		p.log.Warn(w)
	}
	return p, 0
}

// fail reports why the process cannot start, on stderr and to a parent
// waiting for a daemon (see notifyReady), and returns code.
func (p *process) fail(code int, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	// The log's lines come first, on a stderr they share.
	p.flushLogs()
	fmt.Fprintf(p.stderr, "%s: %s\n", p.name, msg)
	notifyReady(msg)
	return code
}

// openLog opens a log destination: a file path (appended to) or def. The
// file is closed by close.
func (p *process) openLog(path string, def io.Writer) (io.Writer, error) {
	w := def
	if path != "" && path != "-" {
		f, err := openLogFile(path, 0o640)
		if err != nil {
			return nil, err
		}
		p.logFiles = append(p.logFiles, f)
		p.closers = append(p.closers, func() { f.Close() })
		w = f
	}
	// Lines close together are written together (logWriter); what is
	// kept is written before the file closes (closers run last first).
	lw := newLogWriter(w, logFlushInterval)
	p.logWriters = append(p.logWriters, lw)
	p.closers = append(p.closers, func() { lw.Close() })
	return lw, nil
}

// flushLogs writes the log lines kept so far.
func (p *process) flushLogs() {
	for _, lw := range p.logWriters {
		lw.Flush()
	}
}

// reopenLogs reopens the log files (SIGHUP), for log rotation. One that
// cannot be reopened is logged, and written to as before.
func (p *process) reopenLogs() {
	// The lines logged before the signal end the file being rotated.
	p.flushLogs()
	for _, f := range p.logFiles {
		if err := f.reopen(); err != nil {
			p.log.Error("reload: log file not reopened, still writing to the one open", "file", f.path, "error", err)
		}
	}
}

// openBackend opens the job backend ([runner]); close closes it.
func (p *process) openBackend() error {
	b, err := openBackend(p.cfg, p.log)
	if err != nil {
		return err
	}
	p.backend = b
	p.closers = append(p.closers, b.Close)
	return nil
}

// startEngine starts the configured executor and task plugins (a plugin
// that cannot start or refuses its section is an error) and the Engine
// on them and the backend; runJobs for a worker, which runs the jobs
// queued on a Redis broker. The plugins are killed by close on every way
// out, so none outlives the process.
func (p *process) startEngine(runJobs bool) error {
	plugs, err := startPlugins(context.Background(), p.cfg, p.log)
	if err != nil {
		return err
	}
	p.plugins = plugs
	p.closers = append(p.closers, func() { plugs.Close() })
	p.reg, p.metrics = newMetrics(plugs, p.log)
	p.disp = p.backend.dispatcher(p.cfg, runJobs, p.log)
	p.engine, err = exe.NewEngine(exe.Config{Store: p.backend.store, Executor: plugs.Executor, Tasks: plugs.Tasks,
		Dispatcher: p.disp, SyncTimeout: p.cfg.API.SyncTimeout, MaxTimeout: p.cfg.Runner.MaxTimeout,
		MaxForks: p.cfg.Runner.Concurrency, Observer: p.metrics, Logger: p.log})
	if err != nil {
		return err
	}
	p.closers = append(p.closers, func() { _ = p.engine.Shutdown(context.Background()) })
	return nil
}

// wait returns when SIGTERM or SIGINT comes, or stopped (the server's own
// end) does: its error, nil after a signal. SIGHUP calls hup, which
// systemd is told of as a reload.
func (p *process) wait(stopped <-chan error, hup func()) error {
	for {
		select {
		case <-p.hups:
			p.sdReloading()
			hup()
			p.sdReady(p.status)
		case sig := <-p.sigs:
			p.log.Info("shutting down", "signal", sig.String())
			return nil
		case err := <-stopped:
			return err
		}
	}
}

// stopping is what a process stops besides its engine and plugins.
type stopping struct {
	// front stops taking requests (the HTTP server), while the engine
	// stops.
	front func(ctx context.Context) error
	// afterJobs runs once no job runs here, before the plugins stop.
	afterJobs func(ctx context.Context)
}

// stop shuts the process down gracefully: s.front (the HTTP server) stops
// taking requests while the engine stops: the jobs and sync operations
// under way get [runner] shutdown_grace, then are cancelled. Only once no
// job runs are the plugins stopped, given pluginGrace to end what they
// were doing (the executor ends the commands of cancelled operations). A
// second signal skips the grace periods: the plugins are killed, and the
// commands they ran are ended by the executor's next start.
func (p *process) stop(s stopping) {
	p.sdStopping()
	hurry, stopNow := context.WithCancel(context.Background())
	defer stopNow()
	go func() {
		select {
		case <-p.sigs:
			p.log.Warn("second signal: stopping now")
			stopNow()
		case <-hurry.Done():
		}
	}()
	grace, cancelGrace := context.WithTimeout(hurry, p.cfg.Runner.ShutdownGrace)
	defer cancelGrace()
	ctx, cancel := context.WithTimeout(hurry, p.cfg.Runner.ShutdownGrace+10*time.Second)
	defer cancel()
	frontDone := make(chan struct{})
	go func() {
		defer close(frontDone)
		if s.front == nil {
			return
		}
		if err := s.front(ctx); err != nil {
			p.log.Warn("shutdown", "error", err)
		}
	}()
	if err := p.engine.Shutdown(grace); err != nil {
		p.log.Warn("engine shutdown", "error", err)
	}
	<-frontDone
	if s.afterJobs != nil {
		s.afterJobs(ctx)
	}
	ctx, cancel = context.WithTimeout(hurry, pluginGrace)
	defer cancel()
	if err := p.plugins.Shutdown(ctx); err != nil {
		p.log.Warn("plugin shutdown", "error", err)
	}
}

// close releases what the process opened, last first.
func (p *process) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// reloadInventory has the executor plugin re-read its inventory (SIGHUP).
// One that no longer loads is refused, and the one in use stays.
func (p *process) reloadInventory() {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	if err := p.plugins.Reload(ctx); err != nil {
		p.log.Error("the inventory was not reloaded; the one in use stays", "error", err)
		return
	}
	p.log.Info("inventory reloaded")
}

// reloadTimeout bounds a reload of the executor plugin's configuration.
const reloadTimeout = time.Minute
