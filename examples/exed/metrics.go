package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/0ops/exed/loader"
	exeprom "github.com/0ops/exed/prometheus"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newMetrics returns the process's registry: the Go runtime's and the
// process's metrics, exed's (package prometheus), and each plugin's,
// which the plugins gather themselves and are asked for at each scrape.
func newMetrics(plugs *loader.Set, log hclog.Logger) (*prometheus.Registry, *exeprom.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := exeprom.New(reg)
	for _, s := range plugs.Started() {
		if err := m.AddPlugin(s.Name, s.Process); err != nil {
			// Two plugins of one name (an executor and a task): the
			// second one's metrics are left out.
			log.Warn("metrics: plugin left out", "kind", s.Kind, "plugin", s.Name, "error", err)
		}
	}
	return reg, m
}

// serveWorkerMetrics serves GET /metrics on [worker] metrics_address with
// the [api] credentials and TLS files, as the API would; it returns the
// address it listens on and the server's shutdown. A non-loopback
// address without credentials is refused unless [api] allow_insecure.
func (p *process) serveWorkerMetrics(sec *security) (string, func(context.Context) error, error) {
	w := p.cfg.Worker
	if !w.MetricsLoopback() && !sec.authenticates() && !p.cfg.API.AllowInsecure {
		return "", nil, fmt.Errorf("[worker] metrics_address %s is not a loopback address: set [api] auth_token_file (a token with ops=metrics) or tls_client_ca, or [api] allow_insecure = true to serve it without authentication", w.MetricsAddress)
	}
	host, _, _ := net.SplitHostPort(w.MetricsAddress)
	handler := exehttp.MetricsHandler(exehttp.Options{Credentials: sec.creds, ClientCerts: p.cfg.API.TLSClientCA != "", ClientCAs: sec.clientCAs(),
		ServerNames: append([]string{host}, p.cfg.API.ServerNames...), Metrics: exeprom.Handler(p.reg),
		Observer: p.metrics, Logger: p.log.Named("metrics")})
	ln, err := net.Listen("tcp", w.MetricsAddress)
	if err != nil {
		return "", nil, fmt.Errorf("[worker] metrics_address: cannot listen on %s: %v", w.MetricsAddress, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second,
		ErrorLog:    p.log.Named("metrics").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	serveLn := exehttp.JSONErrorListener(ln)
	if sec.tls != nil {
		serveLn = tls.NewListener(ln, sec.tls.config())
	}
	go func() {
		if err := srv.Serve(serveLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("metrics server stopped", "error", err)
		}
	}()
	return ln.Addr().String(), srv.Shutdown, nil
}
