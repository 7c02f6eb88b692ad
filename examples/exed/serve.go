package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	exeprom "github.com/0ops/exed/prometheus"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/hashicorp/go-hclog"
)

// serve runs the server until SIGTERM or SIGINT; SIGHUP reloads the
// credentials and TLS files.
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
	sec, err := loadSecurity(cfg, p.log)
	if err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	if !cfg.API.Loopback() && !sec.authenticates() && !cfg.API.AllowInsecure {
		return p.fail(exitUsage, "[api] listen_addr %s is not a loopback address: set auth_token_file or tls_client_ca, or allow_insecure = true to serve without authentication", cfg.API.ListenAddr)
	}
	for _, w := range cfg.API.AccessWarnings(sec.authenticates()) {
		p.log.Warn(w)
	}
	auditOut, err := p.openAudit(cfg.Log.AuditLog)
	if err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	if auditOut != nil {
		sec.audit = exehttp.NewAudit(auditOut, p.log.Named("audit"))
	}
	if err := p.startEngine(false); err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	api := exehttp.New(p.engine, exehttp.Options{MaxBodyBytes: cfg.API.MaxBodyBytes, Credentials: sec.creds,
		ClientCerts: cfg.API.TLSClientCA != "", ClientCAs: sec.clientCAs(), Audit: sec.audit,
		ServerNames: append([]string{cfg.API.ListenAddr}, cfg.API.ServerNames...), UI: cfg.API.UI,
		Metrics: exeprom.Handler(p.reg), Observer: p.metrics, Logger: p.log.Named("http")})

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
	// net/http's own answers to requests it cannot read are JSON too
	// (over plain HTTP: under TLS they are encrypted).
	serveLn := exehttp.JSONErrorListener(ln)
	if sec.tls != nil {
		serveLn = tls.NewListener(ln, sec.tls.config())
	}
	go func() { served <- srv.Serve(serveLn) }()
	p.log.Info("exed listening", "addr", ln.Addr().String(), "executor", cfg.Runner.Executor, "backend", p.backend.name,
		"version", versionString(), "auth", sec.authenticates(), "tls", sec.tls != nil, "config", cfg.Path)
	p.flushLogs() // before a parent waiting on exed -d is told
	notifyReady("ok " + ln.Addr().String())
	p.sdReady("serving on " + ln.Addr().String())

	code = 0
	err = p.wait(served, func() {
		p.reopenLogs()
		p.log.Info("SIGHUP: reloading")
		sec.reload(p.log)
		p.reloadInventory()
		p.log.Info("reload done")
	})
	if err != nil {
		p.log.Error("server stopped", "error", err)
		code = exitFailure
	}
	p.stop(stopping{
		// The server stops taking connections and ends its follow
		// streams, each with a last line saying why (the API registered
		// with it).
		front: func(ctx context.Context) error {
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
		// The jobs have ended (or stay queued for another server): the
		// audit trail gets the end of each that ended here.
		afterJobs: sec.audit.Close,
	})
	p.log.Info("exed stopped")
	return code
}
