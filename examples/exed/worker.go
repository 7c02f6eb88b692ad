package main

import (
	"context"
	"io"

	"github.com/0ops/exed/examples/exed/internal/config"
	exeredis "github.com/0ops/exed/jobstore/redis"
)

// runWorker is `exed worker [-c exed.conf]`: an Engine that serves no API,
// whose Redis dispatcher runs the jobs the servers queue on [runner]
// broker_url with the configured executor, until SIGTERM or SIGINT; then
// it stops taking jobs and finishes (or, after shutdown_grace, fails) the
// ones it holds.
func runWorker(cfg *config.Config, warnings []string, stderr io.Writer) int {
	p, code := startProcess("exed worker", "exed-worker", cfg, warnings, stderr)
	if p == nil {
		return code
	}
	defer p.close()
	if cfg.Runner.BrokerURL == "" {
		return p.fail(exitUsage, "[runner] broker_url is not set: workers take jobs from a Redis broker")
	}
	if err := p.openBackend(); err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	// The [api] credentials and TLS files protect the metrics endpoint.
	var sec *security
	if cfg.Worker.MetricsAddress != "" {
		var err error
		if sec, err = loadSecurity(cfg, p.log); err != nil {
			return p.fail(exitUsage, "%v", err)
		}
	}
	if err := p.startEngine(true); err != nil {
		return p.fail(exitUsage, "%v", err)
	}
	metricsAddr, stopMetrics := "", func(context.Context) error { return nil }
	if sec != nil {
		var err error
		if metricsAddr, stopMetrics, err = p.serveWorkerMetrics(sec); err != nil {
			return p.fail(exitUsage, "%v", err)
		}
	}
	name := p.disp.(*exeredis.Dispatcher).Name()
	p.log.Info("exed worker running", "name", name, "executor", cfg.Runner.Executor,
		"concurrency", cfg.Runner.Concurrency, "workers", cfg.Runner.Workers, "metrics", metricsAddr)
	p.sdReady("running jobs as " + name)
	_ = p.wait(nil, func() {
		p.reopenLogs()
		p.log.Info("SIGHUP: reloading")
		p.reloadInventory()
		if sec != nil {
			sec.reload(p.log) // the credentials and TLS files of the metrics endpoint
		}
		p.log.Info("reload done")
	})
	p.stop(stopping{front: stopMetrics})
	p.log.Info("exed worker stopped")
	return 0
}
