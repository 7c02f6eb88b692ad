// Command asynqpeer is the asynq side of bench/jobs.sh: a server that runs
// a no-op task, a load client that enqueues n of them from c goroutines
// and waits until all have been processed, and an HTTP front that puts
// asynq behind exed's two requests of a job.
//
//	asynqpeer server -redis 127.0.0.1:6390 [-concurrency 16]
//	asynqpeer load -redis 127.0.0.1:6390 -n 5000 -c 32
//	asynqpeer front -redis 127.0.0.1:6390 -addr 127.0.0.1:17901
//
// The load client prints the line exedload prints. It waits on the
// queue's processed counter (asynq keeps no results unless asked): the
// run ends when n more tasks have been processed and none is pending or
// active.
//
// The front (front.go) is what an HTTP API over asynq does for a job, in
// exed's shapes, driven by exedload as exed is: the asynq row with the
// HTTP requests and a stored outcome that exed's row pays for.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
)

const taskType = "noop"

func main() {
	if len(os.Args) < 2 {
		fail("usage: asynqpeer server|load|front [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	db := fs.Int("db", 0, "Redis database")
	concurrency := fs.Int("concurrency", 16, "server: tasks run at once (exed's [runner] workers default)")
	check := fs.Duration("check", 10*time.Millisecond, "server: TaskCheckInterval, the sleep of an idle fetcher (asynq's default, 1s, would idle a fetcher for up to a second whenever the queue runs dry)")
	n := fs.Int("n", 5000, "load: tasks")
	clients := fs.Int("c", 32, "load: concurrent clients")
	timeout := fs.Duration("timeout", 10*time.Minute, "load: bound on the whole run")
	listen := fs.String("addr", "127.0.0.1:17901", "front: address to listen on")
	retention := fs.Duration("retention", time.Hour, "front: how long a completed task's outcome is kept for GET /jobs/{jid} (asynq.Retention)")
	_ = fs.Parse(os.Args[2:])
	opt := asynq.RedisClientOpt{Addr: *addr, DB: *db}
	switch os.Args[1] {
	case "server":
		serve(opt, *concurrency, *check)
	case "load":
		if *n < 1 || *clients < 1 {
			fail("-n and -c must be at least 1")
		}
		load(opt, *n, *clients, *timeout)
	case "front":
		if *retention <= 0 {
			fail("-retention must be positive: a task not kept once completed cannot be read by GET /jobs/{jid}")
		}
		front(opt, *listen, *retention)
	default:
		fail("usage: asynqpeer server|load|front [flags]")
	}
}

func serve(opt asynq.RedisClientOpt, concurrency int, check time.Duration) {
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: concurrency, TaskCheckInterval: check,
		LogLevel: asynq.WarnLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(taskType, func(context.Context, *asynq.Task) error { return nil })
	if err := srv.Start(mux); err != nil {
		fail(err.Error())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Shutdown()
}

func load(opt asynq.RedisClientOpt, n, clients int, timeout time.Duration) {
	ins := asynq.NewInspector(opt)
	defer ins.Close()
	base := 0
	if qi, err := ins.GetQueueInfo("default"); err == nil {
		base = qi.ProcessedTotal
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		share := n / clients
		if c < n%clients {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range share {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask(taskType, nil)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail("enqueue: " + err.Error())
	}
	for {
		qi, err := ins.GetQueueInfo("default")
		if err != nil {
			fail(err.Error())
		}
		if qi.ProcessedTotal-base >= n && qi.Pending == 0 && qi.Active == 0 {
			if qi.FailedTotal > 0 {
				fail(fmt.Sprintf("%d tasks failed", qi.FailedTotal))
			}
			break
		}
		if time.Now().After(deadline) {
			fail(fmt.Sprintf("timeout: %d of %d processed", qi.ProcessedTotal-base, n))
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("jobs=%d clients=%d seconds=%.3f jobs_per_s=%.0f cpu_s=%.3f\n",
		n, clients, elapsed.Seconds(), float64(n)/elapsed.Seconds(), cpu.Seconds())
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "asynqpeer:", msg)
	os.Exit(1)
}
