package client_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/client"
	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quick are follow options that reconnect without the default waits.
var quick = client.FollowOptions{Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}

// collect follows jid through c with opts and returns every event, the
// final job and the Stream.
func collect(t *testing.T, c *client.Client, jid string, opts client.FollowOptions) ([]exe.Event, *client.Stream) {
	t.Helper()
	stream := c.Follow(context.Background(), jid, opts)
	var evs []exe.Event
	for ev, err := range stream.Events() {
		require.NoError(t, err, "after %d events", len(evs))
		evs = append(evs, ev)
	}
	return evs, stream
}

// A finished job's stream cut at every point (inside the headers, the job
// line, an event, between lines, in the final line) is resumed where it
// broke: the events are those of an unbroken follow, each once, in order.
func TestFollowResumesAfterACutAnywhere(t *testing.T) {
	s := newServer(t, serverOpts{hosts: 5})
	ctx := context.Background()
	c := newClient(t, s.url)
	jid, err := c.SubmitExecute(ctx, []string{"h1", "h2", "h3", "h4", "h5"},
		`for i in $(seq 3); do echo "line $i of a host's output, long enough to span a cut"; done; echo err >&2`)
	require.NoError(t, err)
	want, _ := collect(t, c, jid, quick)
	require.Len(t, want, 5)

	// The size of an unbroken answer, as the proxy counts it.
	whole := newCutProxy(t, s.url)
	evs, stream := collect(t, newClient(t, whole.url(s.url)), jid, quick)
	require.Equal(t, want, evs)
	require.Zero(t, stream.Reconnects())
	total := whole.bytesSent(0)
	require.Greater(t, total, int64(1000), "the answer spans many cut points")

	cuts := 0
	for cut := int64(1); cut < total; cut += 23 {
		cuts++
		p := newCutProxy(t, s.url, cut)
		evs, stream := collect(t, newClient(t, p.url(s.url)), jid, quick)
		require.Equal(t, want, evs, "cut after %d of %d bytes: no event lost or repeated", cut, total)
		assert.Equal(t, exe.JobDone, stream.Job().State)
		assert.LessOrEqual(t, stream.Reconnects(), 1)
		p.close()
	}

	t.Logf("%d streams cut at %d points of a %d-byte answer, each resumed with every event once", cuts, cuts, total)

	// Every connection cut after half the whole answer: each brings at
	// least one event, so the stream gets to the end through several.
	p := newCutProxy(t, s.url)
	p.cutEvery(total / 2)
	evs, stream = collect(t, newClient(t, p.url(s.url)), jid, quick)
	require.Equal(t, want, evs)
	assert.Greater(t, stream.Reconnects(), 1)
	t.Logf("every connection cut after %d bytes: the stream got through in %d connections", total/2, stream.Reconnects()+1)
}

// A live job's stream dropped between events, and again, goes on with
// the events that follow, none twice.
func TestFollowResumesALiveJob(t *testing.T) {
	s := newServer(t, serverOpts{hosts: 4})
	ctx := context.Background()
	dir := t.TempDir()
	hosts := []string{"h1", "h2", "h3", "h4"}
	for _, h := range hosts {
		require.NoError(t, os.WriteFile(filepath.Join(dir, h+"_out"), []byte("out of "+h+"\n"), 0o644))
	}
	// Each host's command waits for its go file: hosts end when the test
	// says so. The inventory's hosts are all local: the host's name is
	// the one the command is run for, found by its output file.
	cmd := `h=""; for i in $(seq 3000); do for f in ` + dir + `/*_go; do [ -e "$f" ] && [ ! -e "$f.taken" ] && { h=$(basename "$f" _go); touch "$f.taken"; break 2; }; done; sleep 0.01; done; cat ` + dir + `/"$h"_out`
	c := newClient(t, s.url)
	jid, err := c.SubmitExecute(ctx, hosts, cmd)
	require.NoError(t, err)

	p := newCutProxy(t, s.url)
	stream := newClient(t, p.url(s.url)).Follow(ctx, jid, quick)
	release := func(h string) { require.NoError(t, os.WriteFile(filepath.Join(dir, h+"_go"), nil, 0o644)) }
	release("h1")
	var evs []exe.Event
	for ev, err := range stream.Events() {
		require.NoError(t, err)
		evs = append(evs, ev)
		if len(evs) < len(hosts) {
			// Drop the connection while the job waits for its next host,
			// then let that host finish.
			require.Equal(t, 1, p.openConns())
			p.cutAll()
			release(hosts[len(evs)])
		}
	}
	require.Len(t, evs, 4)
	for i, ev := range evs {
		assert.Equal(t, hosts[i], ev.Host)
		assert.Equal(t, int64(i+1), ev.Seq)
		assert.Equal(t, "out of "+hosts[i]+"\n", ev.Exec.Stdout, "the commands ran in host order (concurrency 1)")
	}
	assert.Equal(t, 3, stream.Reconnects())
	assert.Equal(t, exe.JobDone, stream.Job().State)
}

// A server that ends the stream before the job (it shuts down: its last
// line is the job still Running with "message") is followed again, here
// through another server of the same Engine, from where it stopped.
func TestFollowAfterTheServerEndsTheStream(t *testing.T) {
	s := newServer(t, serverOpts{hosts: 2})
	other := httptest.NewServer(s.api)
	t.Cleanup(other.Close)
	ctx := context.Background()
	dir := t.TempDir()
	goFile := filepath.Join(dir, "go")
	cmd := fmt.Sprintf(`if [ -e %[1]s.h1 ]; then for i in $(seq 3000); do [ -e %[1]s ] && break; sleep 0.01; done; echo second; else touch %[1]s.h1; echo first; fi`, goFile)
	jid, err := newClient(t, s.url).SubmitExecute(ctx, []string{"h1", "h2"}, cmd)
	require.NoError(t, err)

	p := newCutProxy(t, s.url)
	stream := newClient(t, p.url(s.url)).Follow(ctx, jid, quick)
	var evs []exe.Event
	for ev, err := range stream.Events() {
		require.NoError(t, err)
		evs = append(evs, ev)
		if len(evs) == 1 {
			// The first server shuts down: its API ends the stream with
			// "stream ended: server shutting down"; the proxy now leads to
			// the other server.
			p.setUpstream(t, other.URL)
			shutCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			require.NoError(t, s.ts.Config.Shutdown(shutCtx))
			cancel()
			require.NoError(t, os.WriteFile(goFile, nil, 0o644))
		}
	}
	require.Len(t, evs, 2)
	assert.Equal(t, "first\n", evs[0].Exec.Stdout)
	assert.Equal(t, "second\n", evs[1].Exec.Stdout)
	assert.Equal(t, []int64{1, 2}, []int64{evs[0].Seq, evs[1].Seq})
	assert.Equal(t, 1, stream.Reconnects())
	assert.Equal(t, 2, p.accepted())
}

// From skips the events already seen.
func TestFollowFrom(t *testing.T) {
	s := newServer(t, serverOpts{hosts: 3})
	c := newClient(t, s.url)
	jid, err := c.SubmitExecute(context.Background(), []string{"h1", "h2", "h3"}, "echo hi")
	require.NoError(t, err)
	all, _ := collect(t, c, jid, client.FollowOptions{})
	require.Len(t, all, 3)
	rest, stream := collect(t, c, jid, client.FollowOptions{From: 2})
	assert.Equal(t, all[2:], rest)
	assert.Equal(t, int64(3), stream.Seq())
	none, _ := collect(t, c, jid, client.FollowOptions{From: 3})
	assert.Empty(t, none)
}

// What reconnecting cannot mend ends the stream at once; the rest ends it
// after the retries, or when ctx ends.
func TestFollowGivesUp(t *testing.T) {
	s := newServer(t, serverOpts{})
	c := newClient(t, s.url)
	ctx := context.Background()

	stream := c.Follow(ctx, "00000000-0000-0000-0000-000000000000", quick)
	var got error
	for _, err := range stream.Events() {
		got = err
	}
	assert.Equal(t, http.StatusNotFound, apiError(t, got).StatusCode)
	assert.Zero(t, stream.Reconnects(), "a 404 is not retried")

	// A server that is gone: connection refused, every time.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	opts := quick
	opts.Retries = 2
	stream = newClient(t, gone).Follow(ctx, "x", opts)
	got = nil
	n := 0
	for _, err := range stream.Events() {
		got = err
		n++
	}
	assert.Equal(t, 1, n, "the error is yielded once")
	assert.ErrorContains(t, got, "gave up after 3 connections in a row")
	var opErr *net.OpError
	assert.ErrorAs(t, got, &opErr, "the cause is kept")
	assert.Equal(t, 2, stream.Reconnects())

	// ctx ends during a wait of an hour: the stream ends with ctx's
	// error at once.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream = newClient(t, gone).Follow(cctx, "x", client.FollowOptions{Backoff: time.Hour, MaxBackoff: time.Hour})
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	got = nil
	for _, err := range stream.Events() {
		got = err
	}
	assert.ErrorIs(t, got, context.Canceled)
	assert.Less(t, time.Since(start), time.Minute)

	// A range ranged twice says so.
	for _, err := range stream.Events() {
		assert.ErrorContains(t, err, "ranged over once")
	}
}

// Breaking out of the range closes the connection.
func TestFollowBreakCloses(t *testing.T) {
	s := newServer(t, serverOpts{hosts: 2})
	ctx := context.Background()
	dir := t.TempDir()
	jid, err := newClient(t, s.url).SubmitExecute(ctx, []string{"h1", "h2"},
		fmt.Sprintf(`if [ -e %[1]s/h1 ]; then for i in $(seq 3000); do [ -e %[1]s/end ] && break; sleep 0.01; done; else touch %[1]s/h1; fi`, dir))
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(dir, "end"), nil, 0o644) })
	p := newCutProxy(t, s.url)
	c, err := client.New(p.url(s.url), client.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	require.NoError(t, err)
	for ev, err := range c.Follow(ctx, jid, quick).Events() {
		require.NoError(t, err)
		assert.Equal(t, "h1", ev.Host)
		break
	}
	require.Eventually(t, func() bool { return p.openConns() == 0 }, 10*time.Second, 5*time.Millisecond,
		"the connection of a stream given up is closed")
	job, err := c.Job(ctx, jid, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobRunning, job.State, "the job is still running: closing the stream is all")
}
