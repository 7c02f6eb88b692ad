package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
)

// countingObserver is an Observer that only counts, so that the
// benchmark measures the API's own work around it.
type countingObserver struct{ requests, streams atomic.Int64 }

func (o *countingObserver) Request(string, int, time.Duration) { o.requests.Add(1) }
func (o *countingObserver) FollowStreams(delta int)            { o.streams.Add(int64(delta)) }

// BenchmarkJobRequests is bench/jobs.sh's pair of requests per job on a
// loopback server, from 32 clients: POST /ping, then, once the job has
// ended, GET /jobs/{jid}. It reports the process's CPU (user + system,
// getrusage) per pair: clients, server and the job's run together, so
// that only differences between builds mean something.
func BenchmarkJobRequests(b *testing.B) {
	eng, srv, client := newBenchServer(b)
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Post(srv.URL+"/ping", "application/json", strings.NewReader(`{"targets":["localhost"]}`))
			if err != nil {
				b.Error(err)
				return
			}
			var out struct{ JID string }
			err = json.NewDecoder(res.Body).Decode(&out)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusCreated {
				b.Errorf("POST /ping: %d %v", res.StatusCode, err)
				return
			}
			if job, err := eng.Follow(context.Background(), out.JID, func(exe.Event) error { return nil }); err != nil || job.State != exe.JobDone {
				b.Errorf("job %s: %v", out.JID, err)
				return
			}
			res, err = client.Get(srv.URL + "/jobs/" + out.JID)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("GET /jobs/%s: %d", out.JID, res.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// BenchmarkJobGet is GET /jobs/{jid} of one ended job from 32 clients:
// the API's handler chain and net/http, with no job to run. It reports
// the process's CPU per request (clients and server).
func BenchmarkJobGet(b *testing.B) {
	eng, srv, client := newBenchServer(b)
	jid, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Follow(context.Background(), jid, func(exe.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Get(srv.URL + "/jobs/" + jid)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("GET /jobs/%s: %d", jid, res.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// newBenchServer is the API of an Engine with the memory store and
// sshnative on a loopback server, as exed serves it (an Observer, the
// server's names), and a client for 32 connections at once, each
// benchmark goroutine one of them.
func newBenchServer(b *testing.B) (*exe.Engine, *httptest.Server, *http.Client) {
	const clients = 32
	x, err := sshnative.New(sshnative.Config{})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{MaxJobs: 1 << 22}), Executor: x,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: 16, Queue: 1 << 16})})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(exehttp.New(eng, exehttp.Options{ServerNames: []string{"127.0.0.1"}, Observer: &countingObserver{}}))
	b.Cleanup(func() {
		srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	return eng, srv, &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkJobGetHandler is GET /jobs/{jid} of one ended job through the
// API's handler chain alone (Host and cross-site checks, request ID,
// routing, query check, authorization, the handler, the Observer), called
// directly with a ResponseWriter that keeps nothing: what net/http and
// the network add is left out, so that the chain's own cost shows.
func BenchmarkJobGetHandler(b *testing.B) {
	x, err := sshnative.New(sshnative.Config{})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	jid, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Follow(context.Background(), jid, func(exe.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
	api := exehttp.New(eng, exehttp.Options{ServerNames: []string{"127.0.0.1"}, Observer: &countingObserver{}})
	r := httptest.NewRequest("GET", "/jobs/"+jid, nil)
	r.Host = "127.0.0.1:16808"
	w := &discardWriter{header: http.Header{}}
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		clear(w.header)
		w.code = 0
		api.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("GET /jobs/%s: %d", jid, w.code)
		}
	}
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// discardWriter is a ResponseWriter that keeps the status and discards
// the body.
type discardWriter struct {
	header http.Header
	code   int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}
