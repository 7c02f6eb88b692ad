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
	disp := backend.dispatcher(cfg, true, log)
	// A worker is an Engine that serves no API: its dispatcher takes the
	// jobs the servers queue and runs them.
	engine, err := exe.NewEngine(exe.Config{Store: backend.store, Executor: plugs.Executor, Tasks: plugs.Tasks,
		Dispatcher: disp, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "exed worker:", err)
		return exitFailure
	}
	log.Info("exed worker running", "name", disp.(*exeredis.Dispatcher).Name(), "executor", cfg.Runner.Executor,
		"concurrency", cfg.Runner.Concurrency)
	sig := <-sigs
	log.Info("worker shutting down", "signal", sig.String())
	_ = engine.Shutdown(context.Background())
	stopPlugins(context.Background(), plugs, log)
	log.Info("exed worker stopped")
	return 0
}
