package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/redistest"
	"github.com/0ops/exed/jobstore/memory"
	exeredis "github.com/0ops/exed/jobstore/redis"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// backendStack is the API over HTTP with jobs run either in-process on the
// memory store or by two workers through Redis, with an executor that does
// no I/O: what is measured is the job machinery.
func backendStack(b *testing.B, backend string) (*httptest.Server, *exe.Engine) {
	x := &plugintest.Executor{}
	var eng *exe.Engine
	var err error
	switch backend {
	case "memory":
		store := memory.New(memory.Options{MaxJobs: 1 << 22})
		eng, err = exe.NewEngine(exe.Config{Store: store, Executor: x,
			Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: 64, Queue: 1 << 16})})
	case "redis":
		srv := redistest.Start(b)
		rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, PoolSize: 128})
		b.Cleanup(func() { rdb.Close() })
		store := exeredis.New(rdb, exeredis.Options{Prefix: "b" + uuid.NewString()[:8] + ":"})
		for i := 0; i < 2; i++ {
			w, err := exe.NewEngine(exe.Config{Store: store, Executor: x,
				Dispatcher: exeredis.NewDispatcher(store, exeredis.DispatcherOptions{RunJobs: true, Concurrency: 32})})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = w.Shutdown(context.Background()) })
		}
		eng, err = exe.NewEngine(exe.Config{Store: store, Executor: x,
			Dispatcher: exeredis.NewDispatcher(store, exeredis.DispatcherOptions{})})
	}
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(exehttp.New(eng, exehttp.Options{}))
	b.Cleanup(func() { srv.Close(); _ = eng.Shutdown(context.Background()) })
	return srv, eng
}

// BenchmarkJobsEndToEnd: 64 parallel clients POST /ping and follow each
// job to Done. memory = in-process dispatch; redis = the API queues on
// Redis and two workers (32 jobs each at once) run the jobs.
func BenchmarkJobsEndToEnd(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) {
			const clients = 64
			srv, eng := backendStack(b, backend)
			client := &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}}
			runJobs(b, clients, client, srv.URL, eng, `{"targets":["a"]}`)
		})
	}
}

// BenchmarkAppend appends events to running jobs from 16 goroutines, 100
// events per call (one script call, so one round trip, per batch on
// Redis), and reports events per second.
func BenchmarkAppend(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) {
			var store exe.JobStore
			if backend == "memory" {
				store = memory.New(memory.Options{})
			} else {
				srv := redistest.Start(b)
				rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, PoolSize: 32})
				b.Cleanup(func() { rdb.Close() })
				store = exeredis.New(rdb, exeredis.Options{})
			}
			const batch = 100
			events := make([]exe.Event, batch)
			for i := range events {
				events[i] = exe.Event{Host: fmt.Sprintf("web%02d", i%50), Status: exe.HostChanged,
					Exec: &exe.ExecResult{Stdout: "Linux web 6.1.0 x86_64 GNU/Linux\n"}}
			}
			ctx := context.Background()
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
					Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"web01"}, Execute: exe.ExecuteArgs{Cmd: "uname -a"}}}
				if err := store.Create(ctx, job); err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					if err := store.Append(ctx, job.JID, events...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkFollowers1000Redis is BenchmarkFollowers1000 on the Redis store:
// 1,000 HTTP follows of one job whose events are appended to Redis. It
// also reports, once all of them follow, the connections Redis has and how
// many of them wait in a blocking read.
func BenchmarkFollowers1000Redis(b *testing.B) {
	srv := redistest.Start(b)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, PoolSize: 256})
	b.Cleanup(func() { rdb.Close() })
	store := exeredis.New(rdb, exeredis.Options{Prefix: "b" + uuid.NewString()[:8] + ":"})
	clients := map[string]float64{"connected_clients": -1, "blocked_clients": -1}
	runFollowers(b, newStackOn(b, 1000, store), func() {
		info, err := rdb.Info(context.Background(), "clients").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			name, n, _ := strings.Cut(strings.TrimSpace(line), ":")
			if _, ok := clients[name]; ok {
				clients[name], _ = strconv.ParseFloat(n, 64)
			}
		}
	})
	b.ReportMetric(clients["connected_clients"], "redis-conns")
	b.ReportMetric(clients["blocked_clients"], "redis-blocked")
}
