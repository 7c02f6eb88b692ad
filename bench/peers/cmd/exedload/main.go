// Command exedload drives async jobs through an exed server over HTTP, as
// its users do: clients submit n jobs (POST /ping by default) as fast as
// the server answers, each client one request at a time, then wait until
// every job has ended (GET /jobs/{jid}, and a follow for any still
// running). Every job must end Done. It prints one line:
//
//	jobs=5000 clients=32 seconds=1.93 jobs_per_s=2590 cpu_s=0.41 followed=0
//
// cpu_s is this process's own user + system time; followed is how many
// jobs were still running at their GET and were followed to their end
// (a server whose workers fall behind its submits has more of them, and
// each costs a request that stays open).
//
// With -each, every client follows each job to its end before it submits
// the next, as an operator waiting on one job at a time does, and the line
// adds the turnaround, from the submit to the final line of its follow,
// at the median and the 99th percentile (nearest rank: with fewer than 100
// jobs, the slowest), in milliseconds; followed is then n, every job:
//
//	jobs=500 clients=1 seconds=0.81 jobs_per_s=617 cpu_s=0.20 followed=500 turnaround_p50_ms=1.52 turnaround_p99_ms=2.90
//
// With -cpuprofile FILE
// it also writes a CPU profile of itself there: where a client's share of
// a job's CPU goes.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type job struct {
	JID   string `json:"jid"`
	State int    `json:"state"`
	Error string `json:"error"`
	EndAt int64  `json:"endat"`
}

// States of the wire format (API.md).
const (
	stateDone    = 0
	stateRunning = 1
)

func main() {
	url := flag.String("url", "http://127.0.0.1:16808", "exed's base URL")
	path := flag.String("path", "/ping", "the async endpoint")
	body := flag.String("body", `{"targets":["localhost"]}`, "request body")
	n := flag.Int("n", 5000, "jobs")
	clients := flag.Int("c", 32, "concurrent clients")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound on the whole run")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this client to `file`")
	each := flag.Bool("each", false, "follow each job to its end before the next, and print the turnaround")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err.Error())
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err.Error())
		}
		defer pprof.StopCPUProfile()
	}
	if *n < 1 || *clients < 1 {
		fail("-n and -c must be at least 1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: 2 * *clients}}

	var followed atomic.Int64
	turnarounds := make([][]time.Duration, *clients) // each client's own
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, *clients)
	for c := range *clients {
		share := *n / *clients
		if c < *n%*clients {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if *each {
				turnarounds[c], err = driveEach(ctx, hc, *url, *path, *body, share)
				followed.Add(int64(share))
			} else {
				err = drive(ctx, hc, *url, *path, *body, share, &followed)
			}
			if err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		fail(err.Error())
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("jobs=%d clients=%d seconds=%.3f jobs_per_s=%.0f cpu_s=%.3f followed=%d",
		*n, *clients, elapsed.Seconds(), float64(*n)/elapsed.Seconds(), cpu.Seconds(), followed.Load())
	if *each {
		all := slices.Concat(turnarounds...)
		slices.Sort(all)
		fmt.Printf(" turnaround_p50_ms=%.3f turnaround_p99_ms=%.3f", ms(rank(all, 50)), ms(rank(all, 99)))
	}
	fmt.Println()
}

// rank is the p-th percentile of sorted by nearest rank.
func rank(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// driveEach submits share jobs one after the other, following each to
// its end before the next, and returns each one's turnaround: from its
// submit to its follow's final line.
func driveEach(ctx context.Context, hc *http.Client, url, path, body string, share int) ([]time.Duration, error) {
	took := make([]time.Duration, 0, min(share, 1<<20))
	for range share {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		var j job
		if err := do(hc, req, http.StatusCreated, &j); err != nil {
			return nil, fmt.Errorf("POST %s: %w", path, err)
		}
		j, err := follow(ctx, hc, url, j.JID)
		if err != nil {
			return nil, err
		}
		took = append(took, time.Since(start))
		if j.State != stateDone {
			return nil, fmt.Errorf("job %s ended in state %d: %s", j.JID, j.State, j.Error)
		}
	}
	return took, nil
}

// drive submits share jobs one after the other, then waits for each.
// followed counts the jobs it had to follow.
func drive(ctx context.Context, hc *http.Client, url, path, body string, share int, followed *atomic.Int64) error {
	jids := make([]string, 0, share)
	for range share {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		var j job
		if err := do(hc, req, http.StatusCreated, &j); err != nil {
			return fmt.Errorf("POST %s: %w", path, err)
		}
		jids = append(jids, j.JID)
	}
	for _, jid := range jids {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/jobs/"+jid, nil)
		var j job
		if err := do(hc, req, http.StatusOK, &j); err != nil {
			return fmt.Errorf("GET /jobs/%s: %w", jid, err)
		}
		if j.State == stateRunning {
			followed.Add(1)
			var err error
			if j, err = follow(ctx, hc, url, jid); err != nil {
				return err
			}
		}
		if j.State != stateDone {
			return fmt.Errorf("job %s ended in state %d: %s", jid, j.State, j.Error)
		}
	}
	return nil
}

// follow reads GET /jobs/{jid}?follow=1 to its last line, the final job.
func follow(ctx context.Context, hc *http.Client, url, jid string) (job, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/jobs/"+jid+"?follow=1", nil)
	res, err := hc.Do(req)
	if err != nil {
		return job{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return job{}, fmt.Errorf("follow %s: %d %s", jid, res.StatusCode, b)
	}
	var last []byte
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		last = append(last[:0], sc.Bytes()...)
	}
	if err := sc.Err(); err != nil {
		return job{}, fmt.Errorf("follow %s: %w", jid, err)
	}
	var j job
	if err := json.Unmarshal(last, &j); err != nil {
		return job{}, fmt.Errorf("follow %s: last line %q: %w", jid, last, err)
	}
	return j, nil
}

func do(hc *http.Client, req *http.Request, want int, out any) error {
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%d %s", res.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "exedload:", msg)
	os.Exit(1)
}
