package main

import (
	"context"
	"fmt"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"
)

// backend is where jobs live and how they reach workers: the in-memory
// store and in-process dispatch by default; with [runner] redis_url the
// store is on Redis, and with broker_url jobs also go through Redis to
// `exed worker` processes.
type backend struct {
	name       string
	store      exe.JobStore
	redisStore *exeredis.Store
	rdb        goredis.UniversalClient
	workers    bool // broker_url: `exed worker` processes run the jobs
}

// dispatcher returns how the jobs of an Engine on this backend run. In
// memory, in-process workers run them. On Redis they go through the Redis
// queue, and leases keep track of who runs them: with broker_url the
// workers (`exed worker`, runJobs) run them, and the server runs the
// lost-lease recovery beside them, so that a dead worker's jobs fail even
// when no other worker is alive; with redis_url alone the server is a
// worker itself, holding leases on the jobs it runs (whichever process
// sharing the Redis survives fails them "server lost" if it dies).
func (b *backend) dispatcher(cfg *config.Config, runJobs bool, log hclog.Logger) exe.Dispatcher {
	r := cfg.Runner
	if b.redisStore == nil {
		return exe.NewLocalDispatcher(exe.LocalOptions{Workers: r.Workers, Queue: r.QueueSize, Grace: r.ShutdownGrace,
			Logger: log.Named("dispatcher")})
	}
	opts := exeredis.DispatcherOptions{RunJobs: runJobs || !b.workers, Concurrency: r.Workers, Lease: r.Lease,
		Grace: r.ShutdownGrace, Logger: log.Named("dispatcher")}
	if !runJobs && !b.workers {
		opts.LostMessage = exe.ErrServerLost.Error()
	}
	return exeredis.NewDispatcher(b.redisStore, opts)
}

func openBackend(cfg *config.Config, log hclog.Logger) (*backend, error) {
	r := cfg.Runner
	if r.RedisURL == "" && r.BrokerURL == "" {
		store := memory.New(memory.Options{Retention: r.JobTTL, MaxJobs: r.MaxJobs, MaxBytes: r.MaxJobBytes})
		log.Info("jobs are kept in memory and lost when exed stops or crashes (set [runner] redis_url to keep them)",
			"max_jobs", r.MaxJobs, "max_job_bytes", store.MaxBytes())
		return &backend{name: "memory", store: store}, nil
	}
	url := r.RedisURL
	if url == "" {
		url = r.BrokerURL
	}
	if r.BrokerURL != "" && r.BrokerURL != url {
		return nil, fmt.Errorf("[runner] broker_url must name the same Redis as redis_url (workers lease jobs where they are stored)")
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("[runner] redis_url: %v", err)
	}
	// Fail fast while Redis is down: requests answer 503 within seconds
	// instead of hanging, and every call retries once.
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 2*time.Second, 3*time.Second, 3*time.Second
	opts.PoolTimeout, opts.MaxRetries = 3*time.Second, 1
	// Each request in flight holds a connection for its round trip: room
	// for bursts well beyond go-redis's default of 10 per CPU. (Follows
	// wait on connections of the store's own.)
	if opts.PoolSize < 256 {
		opts.PoolSize = 256
	}
	rdb := goredis.NewClient(opts)
	store := exeredis.New(rdb, exeredis.Options{Prefix: r.RedisPrefix, Retention: r.JobTTL})
	b := &backend{name: "redis", store: store, redisStore: store, rdb: rdb}
	if r.BrokerURL != "" {
		b.name, b.workers = "redis+workers", true
	}
	if err := store.Health(context.Background()); err != nil {
		// Not fatal: the API answers 503 until Redis is back.
		log.Warn("redis is not reachable yet", "error", err)
	}
	return b, nil
}

// Close closes the store and the Redis client.
func (b *backend) Close() {
	_ = b.store.Close()
	if b.rdb != nil {
		_ = b.rdb.Close()
	}
}
