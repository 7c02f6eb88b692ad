package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/hashicorp/go-hclog"
)

// serve runs the server until SIGTERM or SIGINT.
func serve(cfg *config.Config, warnings []string, stdout, stderr io.Writer) int {
	p, code := startProcess("exed", "exed", cfg, warnings, stderr)
	if p == nil {
		return code
	}
	defer p.close()
	accessOut, err := p.openLog(cfg.Log.AccessLog, stdout)
	if err != nil {
		return p.fail(exitUsage, "[log] access_log: %v", err)
	}
	if err := p.openBackend(); err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	tokens, tokenWarnings, err := cfg.API.Tokens()
	if err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	for _, w := range tokenWarnings {
		p.log.Warn(w)
	}
	if !cfg.API.Loopback() && len(tokens) == 0 && !cfg.API.AllowInsecure {
		return p.fail(exitUsage, "[api] listen_addr %s is not a loopback address: set auth_token_file, or allow_insecure = true to serve without authentication", cfg.API.ListenAddr)
	}
	for _, w := range cfg.API.AccessWarnings(len(tokens) > 0) {
		p.log.Warn(w)
	}
	if err := p.startEngine(false); err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	api := exehttp.New(p.engine, exehttp.Options{MaxBodyBytes: cfg.API.MaxBodyBytes, Tokens: tokens,
		ServerNames: append([]string{cfg.API.ListenAddr}, cfg.API.ServerNames...), Logger: p.log.Named("http")})

	addr := net.JoinHostPort(cfg.API.ListenAddr, strconv.Itoa(cfg.API.ListenPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return p.fail(exitFailure, "cannot listen on %s: %v", addr, err)
	}
	if cfg.API.PidFile != "" {
		if err := writePidFile(cfg.API.PidFile); err != nil {
			ln.Close()
			return p.fail(exitFailure, "%v", err)
		}
		defer removePidFile(cfg.API.PidFile)
	}
	srv := &http.Server{
		Handler:           accessLog(accessOut, api),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          p.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	served := make(chan error, 1)
	// net/http's own answers to requests it cannot read are JSON too.
	go func() { served <- srv.Serve(exehttp.JSONErrorListener(ln)) }()
	p.log.Info("exed listening", "addr", ln.Addr().String(), "executor", cfg.Runner.Executor, "backend", p.backend.name,
		"version", versionString(), "auth", len(tokens) > 0, "config", cfg.Path)
	notifyReady("ok " + ln.Addr().String())

	code = 0
	if err := p.wait(served); err != nil {
		p.log.Error("server stopped", "error", err)
		code = exitFailure
	}
	// The server stops taking connections and ends its follow streams,
	// each with a last line saying why (the API registered with it).
	p.stop(func(ctx context.Context) error {
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	})
	p.log.Info("exed stopped")
	return code
}
