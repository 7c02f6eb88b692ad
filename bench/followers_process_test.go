package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/redistest"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// followersEnv, when set in the environment of this test binary, makes it
// the follower fleet of BenchmarkFollowers1000ServerCPU instead of running
// tests: the value is the URL to follow.
const followersEnv = "EXE_BENCH_FOLLOWERS"

func TestMain(m *testing.M) {
	if url := os.Getenv(followersEnv); url != "" {
		os.Exit(followerFleet(url, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// BenchmarkFollowers1000ServerCPU is BenchmarkFollowers1000 with the 1,000
// followers in a process of their own, so that the server's CPU time per
// delivered line (server-us/line: this process's user and system time)
// is measured apart from the clients' (client-us/line: the follower
// process's). They still share the machine's cores, as they would on a
// server followed from the same host.
func BenchmarkFollowers1000ServerCPU(b *testing.B) {
	runFollowerProcess(b, newStack(b, 1), 0)
}

// BenchmarkFollowers1000RedisServerCPU is BenchmarkFollowers1000ServerCPU
// on the Redis store: the server's follows read the job's stream from a
// redis-server of its own, whose CPU time per line is redis-us/line.
func BenchmarkFollowers1000RedisServerCPU(b *testing.B) {
	srv := redistest.Start(b)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, PoolSize: 256})
	b.Cleanup(func() { rdb.Close() })
	store := exeredis.New(rdb, exeredis.Options{Prefix: "b" + uuid.NewString()[:8] + ":"})
	runFollowerProcess(b, newStackOn(b, 1, store), srv.PID())
}

// runFollowerProcess runs the follower fleet against s and reports the
// latencies and the CPU time per delivered line of this process, of the
// fleet and, when redisPID is set, of that redis-server.
func runFollowerProcess(b *testing.B, s *stack, redisPID int) {
	const followers = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job := &exe.Job{JID: "bench-follow-cpu", State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"localhost"}, Execute: exe.ExecuteArgs{Cmd: "true"}}}
	if err := s.store.Create(ctx, job); err != nil {
		b.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), followersEnv+"="+s.srv.URL+"/jobs/"+job.JID+"?follow=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	out := bufio.NewScanner(outPipe)
	expect := func(prefix string) string {
		b.Helper()
		if !out.Scan() {
			b.Fatalf("follower process: %v (want %q)", out.Err(), prefix)
		}
		line := out.Text()
		if !strings.HasPrefix(line, prefix) {
			b.Fatalf("follower process said %q, want %q", line, prefix)
		}
		return strings.TrimPrefix(line, prefix)
	}
	expect("ready")

	serverCPU, clientCPU := processCPU(os.Getpid()), processCPU(cmd.Process.Pid)
	var redisCPU time.Duration
	if redisPID != 0 {
		redisCPU = processCPU(redisPID)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		appendStamped(ctx, b, s.store, job.JID)
		expect("got " + strconv.Itoa(i+1)) // every follower read it
	}
	b.StopTimer()
	serverCPU, clientCPU = processCPU(os.Getpid())-serverCPU, processCPU(cmd.Process.Pid)-clientCPU
	if redisPID != 0 {
		redisCPU = processCPU(redisPID) - redisCPU
	}
	if err := s.store.Finish(ctx, job.JID, exe.JobDone, ""); err != nil {
		b.Fatal(err)
	}
	_ = in.Close()
	var p50, p99, maxMS float64
	if _, err := fmt.Sscan(expect("done "), &p50, &p99, &maxMS); err != nil {
		b.Fatal(err)
	}
	lines := float64(b.N * followers)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(maxMS, "max-ms")
	b.ReportMetric(float64(serverCPU.Microseconds())/lines, "server-us/line")
	b.ReportMetric(float64(clientCPU.Microseconds())/lines, "client-us/line")
	if redisPID != 0 {
		b.ReportMetric(float64(redisCPU.Microseconds())/lines, "redis-us/line")
	}
}

// processCPU is the user and system time pid has used so far, from
// /proc/pid/stat (clock ticks of 10 ms).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// followerFleet follows url from 1,000 connections, says "ready" once
// every one has read the job line, "got N" once all of them have read the
// event of Seq N, and, when the job ends, "done p50 p99 max" (latencies in
// ms, from the send time the event carries to the line read). It ends
// early when stdin closes.
func followerFleet(url string, stdin io.Reader, stdout io.Writer) int {
	const followers = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, stdin); cancel() }()
	tr := &http.Transport{MaxIdleConnsPerHost: followers}
	client := &http.Client{Transport: tr}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		counts    = map[int64]int{}
		say       = make(chan string, 16)
		ready     sync.WaitGroup
		done      sync.WaitGroup
	)
	ready.Add(followers)
	done.Add(followers)
	for range followers {
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			res, err := client.Do(req)
			if err != nil {
				fmt.Fprintln(os.Stderr, "follow:", err)
				os.Exit(1)
			}
			defer res.Body.Close()
			rd := bufio.NewReaderSize(res.Body, 4096)
			if _, err := rd.ReadBytes('\n'); err != nil {
				fmt.Fprintln(os.Stderr, "follow:", err)
				os.Exit(1)
			}
			ready.Done()
			for seq := int64(1); ; {
				line, err := rd.ReadBytes('\n')
				if err != nil {
					return
				}
				now := time.Now()
				sent, ok := sentAt(line)
				if !ok {
					continue // the final job line
				}
				mu.Lock()
				latencies = append(latencies, now.Sub(time.Unix(0, sent)))
				counts[seq]++
				if counts[seq] == followers {
					delete(counts, seq)
					say <- "got " + strconv.FormatInt(seq, 10)
				}
				mu.Unlock()
				seq++
			}
		}()
	}
	ready.Wait()
	fmt.Fprintln(stdout, "ready")
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	for {
		select {
		case line := <-say:
			fmt.Fprintln(stdout, line)
			continue
		case <-finished:
		}
		break
	}
	for len(say) > 0 {
		fmt.Fprintln(stdout, <-say)
	}
	if len(latencies) == 0 {
		fmt.Fprintln(stdout, "done 0 0 0")
		return 0
	}
	pct := percentiles(latencies)
	fmt.Fprintf(stdout, "done %.3f %.3f %.3f\n", pct(0.50), pct(0.99), pct(1))
	return 0
}
