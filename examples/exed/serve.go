package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/loader"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/hashicorp/go-hclog"
)

// streamGrace is how long shutdown waits for in-flight requests before it
// ends follow streams.
const streamGrace = 3 * time.Second

// pluginGrace bounds how long shutdown waits for the plugins to end what
// they were doing (the executor: the commands of cancelled operations,
// HUP, TERM, then KILL to each process group) before it kills them.
const pluginGrace = 30 * time.Second

// stopPlugins stops the plugins once nothing uses them, each given until
// pluginGrace has passed or ctx is done to end what it was doing.
func stopPlugins(ctx context.Context, plugs *loader.Set, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, pluginGrace)
	defer cancel()
	if err := plugs.Shutdown(ctx); err != nil {
		log.Warn("plugin shutdown", "error", err)
	}
}

// openLog opens a log destination: a file path (appended to) or def.
func openLog(path string, def io.Writer) (io.Writer, func(), error) {
	if path == "" || path == "-" {
		return def, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// serve runs the server until SIGTERM or SIGINT; SIGHUP reloads the
// credentials and TLS files.
func serve(cfg *config.Config, warnings []string, stdout, stderr io.Writer) int {
	// Before anything else: a SIGTERM that arrives while exed starts must
	// still shut it down gracefully, not kill it, and a SIGHUP must not
	// end it (its default action).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	fail := func(code int, format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintln(stderr, "exed:", msg)
		notifyReady(msg)
		return code
	}
	errOut, closeErr, err := openLog(cfg.Log.ErrorLog, stderr)
	if err != nil {
		return fail(exitUsage, "[log] error_log: %v", err)
	}
	defer closeErr()
	accessOut, closeAccess, err := openLog(cfg.Log.AccessLog, stdout)
	if err != nil {
		return fail(exitUsage, "[log] access_log: %v", err)
	}
	defer closeAccess()
	log := hclog.New(&hclog.LoggerOptions{Name: "exed", Level: hclog.LevelFromString(cfg.Log.Level), Output: errOut})
	for _, w := range warnings {
		log.Warn(w)
	}

	backend, err := openBackend(cfg, log)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer backend.Close()
	sec, err := loadSecurity(cfg, log)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if !cfg.API.Loopback() && !sec.authenticates() && !cfg.API.AllowInsecure {
		return fail(exitUsage, "[api] listen_addr %s is not a loopback address: set auth_token_file or tls_client_ca, or allow_insecure = true to serve without authentication", cfg.API.ListenAddr)
	}
	for _, w := range cfg.API.AccessWarnings(sec.authenticates()) {
		log.Warn(w)
	}
	auditOut, closeAudit, err := openAudit(cfg.Log.AuditLog)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer closeAudit()
	if auditOut != nil {
		sec.audit = exehttp.NewAudit(auditOut, log.Named("audit"))
	}

	plugs, err := startPlugins(context.Background(), cfg, log)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	// Plugins are killed on every way out, so none outlives the server.
	defer plugs.Close()
	executor := plugs.Executor
	store := backend.store
	runner := &exe.Runner{Store: store, Executor: executor, Tasks: plugs.Tasks, Logger: log.Named("runner")}
	disp := backend.dispatcher(cfg, runner, log)
	engine, err := exe.NewEngine(exe.Config{Store: store, Dispatcher: disp, Executor: executor, Tasks: plugs.Tasks,
		SyncTimeout: cfg.API.SyncTimeout, Logger: log})
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	api := exehttp.New(engine, exehttp.Options{MaxBodyBytes: cfg.API.MaxBodyBytes, Credentials: sec.creds,
		ClientCerts: cfg.API.TLSClientCA != "", Audit: sec.audit,
		ServerNames: append([]string{cfg.API.ListenAddr}, cfg.API.ServerNames...), Logger: log.Named("http")})

	addr := net.JoinHostPort(cfg.API.ListenAddr, strconv.Itoa(cfg.API.ListenPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = disp.Shutdown(context.Background())
		return fail(exitFailure, "cannot listen on %s: %v", addr, err)
	}
	if cfg.API.PidFile != "" {
		if err := writePidFile(cfg.API.PidFile); err != nil {
			ln.Close()
			_ = disp.Shutdown(context.Background())
			return fail(exitFailure, "%v", err)
		}
		defer removePidFile(cfg.API.PidFile)
	}

	// Follow streams run as long as their job: cancelling the base context
	// ends them at shutdown instead of holding Shutdown until they finish.
	// Its cause tells each stream to say so on its last line.
	baseCtx, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	srv := &http.Server{
		Handler:           accessLog(accessOut, api),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	served := make(chan error, 1)
	// net/http's own answers to requests it cannot read are JSON too
	// (over plain HTTP: under TLS they are encrypted).
	serveLn := exehttp.JSONErrorListener(ln)
	if sec.tls != nil {
		serveLn = tls.NewListener(ln, sec.tls.config())
	}
	go func() { served <- srv.Serve(serveLn) }()
	log.Info("exed listening", "addr", ln.Addr().String(), "executor", cfg.Runner.Executor, "backend", backend.name,
		"version", versionString(), "auth", sec.authenticates(), "tls", sec.tls != nil, "config", cfg.Path)
	notifyReady("ok " + ln.Addr().String())

	code := 0
wait:
	for {
		select {
		case <-hups:
			log.Info("SIGHUP: reloading")
			sec.reload(log)
			log.Info("reload done (the inventory is read at start only: restart exed to change it)")
		case sig := <-sigs:
			log.Info("shutting down", "signal", sig.String())
			break wait
		case err := <-served:
			log.Error("server stopped", "error", err)
			code = exitFailure
			break wait
		}
	}
	// A second signal skips the grace periods: the plugins are killed, and
	// the commands they ran are ended by the executor's next start.
	hurry, stopNow := context.WithCancel(context.Background())
	defer stopNow()
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: stopping now")
			stopNow()
		case <-hurry.Done():
		}
	}()
	ctx, cancel := context.WithTimeout(hurry, cfg.Runner.ShutdownGrace+10*time.Second)
	defer cancel()
	// In-flight sync requests get a few seconds to finish; follow streams,
	// which last as long as their job, are then ended through the base
	// context so they cannot hold the shutdown.
	stopStreams := time.AfterFunc(streamGrace, func() { cancelBase(exe.ErrShutdown) })
	defer stopStreams.Stop()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("http shutdown", "error", err)
	}
	if err := disp.Shutdown(ctx); err != nil {
		log.Warn("dispatcher shutdown", "error", err)
	}
	// The jobs have ended (or stay queued for another server): the
	// audit trail gets the end of each that ended here.
	sec.audit.Close(ctx)
	// Only now that no job runs: the jobs returned as soon as they were
	// cancelled, but the executor is still ending their commands, and
	// exits once it has.
	stopPlugins(hurry, plugs, log)
	_ = store.Close()
	log.Info("exed stopped")
	return code
}
