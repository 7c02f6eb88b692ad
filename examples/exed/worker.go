package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/exe"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/hashicorp/go-hclog"
)

// runWorker is `exed worker [-c exed.conf]`: it runs the jobs the API
// servers queue on [runner] broker_url, with the configured executor, until
// SIGTERM or SIGINT; then it stops taking jobs and finishes (or, after
// shutdown_grace, fails) the ones it holds.
func runWorker(cfg *config.Config, warnings []string, stderr io.Writer) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// SIGHUP reloads the API server; it must not end a worker (its
	// default action), which has nothing of it to reload.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	errOut, closeErr, err := openLog(cfg.Log.ErrorLog, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "exed worker: [log] error_log:", err)
		return exitUsage
	}
	defer closeErr()
	log := hclog.New(&hclog.LoggerOptions{Name: "exed-worker", Level: hclog.LevelFromString(cfg.Log.Level), Output: errOut})
	for _, w := range warnings {
		log.Warn(w)
	}
	if cfg.Runner.BrokerURL == "" {
		fmt.Fprintln(stderr, "exed worker: [runner] broker_url is not set: workers take jobs from a Redis broker")
		return exitUsage
	}
	backend, err := openBackend(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "exed worker:", err)
		return exitUsage
	}
	defer backend.Close()
	plugs, err := startPlugins(context.Background(), cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "exed worker:", err)
		return exitUsage
	}
	defer plugs.Close()
	runner := &exe.Runner{Store: backend.store, Executor: plugs.Executor, Tasks: plugs.Tasks, Logger: log.Named("runner")}
	w := exeredis.NewWorker(backend.rdb, backend.redisStore, runner, exeredis.WorkerOptions{
		Concurrency: cfg.Runner.Concurrency, Lease: cfg.Runner.Lease, Grace: cfg.Runner.ShutdownGrace, Logger: log,
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	log.Info("exed worker running", "name", w.Name(), "executor", cfg.Runner.Executor, "concurrency", cfg.Runner.Concurrency)
wait:
	for {
		select {
		case <-hups:
			log.Info("SIGHUP: a worker has nothing to reload (the inventory is read at start only: restart it to change it)")
		case sig := <-sigs:
			log.Info("worker shutting down", "signal", sig.String())
			break wait
		case <-done:
			break wait
		}
	}
	stop()
	<-done
	stopPlugins(context.Background(), plugs, log)
	log.Info("exed worker stopped")
	return 0
}
