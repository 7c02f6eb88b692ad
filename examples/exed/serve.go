package main

import (
	"context"
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

// serve runs the server until SIGTERM or SIGINT.
func serve(cfg *config.Config, warnings []string, stdout, stderr io.Writer) int {
	// Before anything else: a SIGTERM that arrives while exed starts must
	// still shut it down gracefully, not kill it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
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
	tokens, tokenWarnings, err := cfg.API.Tokens()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	for _, w := range tokenWarnings {
		log.Warn(w)
	}
	if !cfg.API.Loopback() && len(tokens) == 0 && !cfg.API.AllowInsecure {
		return fail(exitUsage, "[api] listen_addr %s is not a loopback address: set auth_token_file, or allow_insecure = true to serve without authentication", cfg.API.ListenAddr)
	}
	for _, w := range cfg.API.AccessWarnings(len(tokens) > 0) {
		log.Warn(w)
	}

	plugs, err := startPlugins(context.Background(), cfg, log)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	// Plugins are killed on every way out, so none outlives the server.
	defer plugs.Close()
	store := backend.store
	engine, err := exe.NewEngine(exe.Config{Store: store, Executor: plugs.Executor, Tasks: plugs.Tasks,
		Dispatcher: backend.dispatcher(cfg, false, log), SyncTimeout: cfg.API.SyncTimeout, Logger: log})
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	api := exehttp.New(engine, exehttp.Options{MaxBodyBytes: cfg.API.MaxBodyBytes, Tokens: tokens,
		ServerNames: append([]string{cfg.API.ListenAddr}, cfg.API.ServerNames...), Logger: log.Named("http")})

	addr := net.JoinHostPort(cfg.API.ListenAddr, strconv.Itoa(cfg.API.ListenPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = engine.Shutdown(context.Background())
		return fail(exitFailure, "cannot listen on %s: %v", addr, err)
	}
	if cfg.API.PidFile != "" {
		if err := writePidFile(cfg.API.PidFile); err != nil {
			ln.Close()
			_ = engine.Shutdown(context.Background())
			return fail(exitFailure, "%v", err)
		}
		defer removePidFile(cfg.API.PidFile)
	}

	srv := &http.Server{
		Handler:           accessLog(accessOut, api),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	served := make(chan error, 1)
	// net/http's own answers to requests it cannot read are JSON too.
	go func() { served <- srv.Serve(exehttp.JSONErrorListener(ln)) }()
	log.Info("exed listening", "addr", ln.Addr().String(), "executor", cfg.Runner.Executor, "backend", backend.name,
		"version", versionString(), "auth", len(tokens) > 0, "config", cfg.Path)
	notifyReady("ok " + ln.Addr().String())

	code := 0
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case err := <-served:
		log.Error("server stopped", "error", err)
		code = exitFailure
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
	// The server stops taking connections and ends its follow streams,
	// each with a last line saying why, while the engine stops: the jobs
	// and sync requests under way get shutdown_grace, then are cancelled.
	grace, cancelGrace := context.WithTimeout(hurry, cfg.Runner.ShutdownGrace)
	defer cancelGrace()
	ctx, cancel := context.WithTimeout(hurry, cfg.Runner.ShutdownGrace+10*time.Second)
	defer cancel()
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("http shutdown", "error", err)
		}
	}()
	if err := engine.Shutdown(grace); err != nil {
		log.Warn("engine shutdown", "error", err)
	}
	<-httpDone
	// Only now that no job runs: the jobs returned as soon as they were
	// cancelled, but the executor is still ending their commands, and
	// exits once it has.
	stopPlugins(hurry, plugs, log)
	log.Info("exed stopped")
	return code
}
