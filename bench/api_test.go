package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bytes"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
)

type stack struct {
	srv    *httptest.Server
	engine *exe.Engine
	store  exe.JobStore
	client *http.Client
}

// newStack is the embedded default behind a real loopback HTTP server.
func newStack(b *testing.B, conns int) *stack {
	return newStackOn(b, conns, memory.New(memory.Options{MaxJobs: 1 << 22}))
}

// newStackOn is newStack with another job store; each of configure may
// change the Engine's config and the API's options (metrics, tokens).
func newStackOn(b *testing.B, conns int, store exe.JobStore, configure ...func(*exe.Config, *exehttp.Options)) *stack {
	b.Helper()
	x, err := sshnative.New(sshnative.Config{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := exe.Config{Store: store, Executor: x,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: runtime.NumCPU(), Queue: 1 << 16})}
	var opts exehttp.Options
	for _, c := range configure {
		c(&cfg, &opts)
	}
	eng, err := exe.NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(exehttp.New(eng, opts))
	b.Cleanup(func() {
		srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0}
	return &stack{srv: srv, engine: eng, store: store, client: &http.Client{Transport: tr}}
}

// BenchmarkAsyncPing submits POST /ping over HTTP from parallel clients and
// waits for each job to end Done: jobs/s is submitted-and-completed
// throughput of the whole stack (HTTP, validation, store, dispatcher,
// executor, outcome).
func BenchmarkAsyncPing(b *testing.B) {
	const clients = 32
	s := newStack(b, clients)
	b.ReportAllocs()
	runJobs(b, clients, s.client, s.srv.URL, s.engine, `{"targets":["localhost"]}`)
}

// runJobs is the async-job loop of the throughput benchmarks: clients
// parallel clients POST /ping with body and follow each job to its end;
// every job must end Done. It reports jobs/s.
func runJobs(b *testing.B, clients int, client *http.Client, url string, eng *exe.Engine, body string) {
	var failed atomic.Int64
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			res, err := client.Post(url+"/ping", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			var out map[string]string
			err = json.NewDecoder(res.Body).Decode(&out)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusCreated {
				b.Errorf("POST /ping: %d %v", res.StatusCode, err)
				return
			}
			job, err := eng.Follow(ctx, out["jid"], func(exe.Event) error { return nil })
			if err != nil || job.State != exe.JobDone {
				failed.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d jobs did not end Done", n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

// BenchmarkFollowers1000 holds 1,000 follow streams of one job open over
// HTTP; each iteration appends one event and waits until every follower has
// read it. It reports the delivery latency (append to line read) over all
// deliveries: p50 and p99.
func BenchmarkFollowers1000(b *testing.B) {
	runFollowers(b, newStack(b, 1000), nil)
}

// BenchmarkFollowers1000SSE is BenchmarkFollowers1000 with every follower
// asking for Server-Sent Events (Accept: text/event-stream), as 1,000
// browsers' EventSources would: the same fan-out, each event a message
// of an id, an event name and a data line.
func BenchmarkFollowers1000SSE(b *testing.B) {
	runFollowersWith(b, newStack(b, 1000), http.Header{"Accept": {"text/event-stream"}}, nil)
}

// runFollowers is BenchmarkFollowers1000 on the stack s; following, if
// set, is called once every follower is following.
func runFollowers(b *testing.B, s *stack, following func()) {
	runFollowersWith(b, s, nil, following)
}

// runFollowersWith is runFollowers with header on every follow request.
func runFollowersWith(b *testing.B, s *stack, header http.Header, following func()) {
	const followers = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job := &exe.Job{JID: "bench-follow", State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"localhost"}, Execute: exe.ExecuteArgs{Cmd: "true"}}}
	if err := s.store.Create(ctx, job); err != nil {
		b.Fatal(err)
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		got       = make(chan struct{}, followers*4)
		ready     sync.WaitGroup
		done      sync.WaitGroup
	)
	ready.Add(followers)
	done.Add(followers)
	for i := 0; i < followers; i++ {
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/jobs/bench-follow?follow=1", nil)
			maps.Copy(req.Header, header)
			res, err := s.client.Do(req)
			if err != nil {
				b.Error(err)
				ready.Done()
				return
			}
			defer res.Body.Close()
			rd := bufio.NewReaderSize(res.Body, 4096)
			// The job line; of an event stream, the job message, which
			// ends with a blank line.
			for {
				line, err := rd.ReadBytes('\n')
				if err != nil {
					b.Error(err)
					ready.Done()
					return
				}
				if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") || len(line) == 1 {
					break
				}
			}
			ready.Done()
			for {
				line, err := rd.ReadBytes('\n')
				if err != nil {
					return
				}
				now := time.Now()
				// A real follower runs elsewhere; this one shares the two
				// cores with the server, so it reads only the send time
				// instead of decoding every line.
				sent, ok := sentAt(line)
				if !ok {
					continue // the final job line; an event's id, name or end
				}
				mu.Lock()
				latencies = append(latencies, now.Sub(time.Unix(0, sent)))
				mu.Unlock()
				got <- struct{}{}
			}
		}()
	}
	ready.Wait()
	if following != nil {
		following()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		appendStamped(ctx, b, s.store, job.JID)
		for k := 0; k < followers; k++ {
			select {
			case <-got:
			case <-time.After(30 * time.Second):
				b.Fatalf("event %d: only %d of %d followers received it", i, k, followers)
			}
		}
	}
	b.StopTimer()
	if err := s.store.Finish(ctx, job.JID, exe.JobDone, ""); err != nil {
		b.Fatal(err)
	}
	done.Wait()
	if len(latencies) != b.N*followers {
		b.Fatalf("%d deliveries, want %d", len(latencies), b.N*followers)
	}
	pct := reportLatencies(b, latencies)
	b.ReportMetric(pct(1.0), "max-ms")
}

// sentAt extracts the send time that an event line carries in its msg.
func sentAt(line []byte) (int64, bool) {
	const key = `"msg":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

// BenchmarkFollowers1000InProcess is the same fan-out without sockets: 1,000
// goroutines follow one job through the Engine. Set against
// BenchmarkFollowers1000 it shows how much of the delivery time is exed's
// own broadcast and how much is loopback TCP.
func BenchmarkFollowers1000InProcess(b *testing.B) {
	const followers = 1000
	s := newStack(b, 1)
	ctx := context.Background()
	job := &exe.Job{JID: "bench-follow-inproc", State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}}}
	if err := s.store.Create(ctx, job); err != nil {
		b.Fatal(err)
	}
	type delivery struct{ lat time.Duration }
	got := make(chan delivery, followers*4)
	var done sync.WaitGroup
	done.Add(followers)
	for i := 0; i < followers; i++ {
		go func() {
			defer done.Done()
			_, err := s.engine.Follow(ctx, job.JID, func(ev exe.Event) error {
				sent, _ := strconv.ParseInt(ev.Msg, 10, 64)
				got <- delivery{time.Since(time.Unix(0, sent))}
				return nil
			})
			if err != nil {
				b.Error(err)
			}
		}()
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		appendStamped(ctx, b, s.store, job.JID)
		for k := 0; k < followers; k++ {
			d := <-got
			lat = append(lat, d.lat)
		}
	}
	b.StopTimer()
	if err := s.store.Finish(ctx, job.JID, exe.JobDone, ""); err != nil {
		b.Fatal(err)
	}
	done.Wait()
	reportLatencies(b, lat)
}

// appendStamped appends one event whose msg is the time it was sent, in
// nanoseconds, from which the followers measure delivery latency.
func appendStamped(ctx context.Context, b *testing.B, store exe.JobStore, jid string) {
	ev := exe.Event{Host: "localhost", Status: exe.HostOK, Msg: strconv.FormatInt(time.Now().UnixNano(), 10)}
	if err := store.Append(ctx, jid, ev); err != nil {
		b.Fatal(err)
	}
}

// reportLatencies reports the p50 and p99 of lat in milliseconds and returns
// the percentile function for further metrics.
func reportLatencies(b *testing.B, lat []time.Duration) func(p float64) float64 {
	pct := percentiles(lat)
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	return pct
}

// percentiles sorts lat and returns its percentile function, in
// milliseconds (p from 0 to 1).
func percentiles(lat []time.Duration) func(p float64) float64 {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
}
