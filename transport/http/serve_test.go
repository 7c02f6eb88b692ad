package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// part records, when it is shut down, whether the engine still took jobs
// and how the given job stood.
type part struct {
	engine *exe.Engine
	store  exe.JobStore
	jid    string
	busy   error
	job    *exe.Job
	calls  int
}

func (p *part) Shutdown(ctx context.Context) error {
	p.calls++
	_, p.busy = p.engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}})
	p.job, _ = p.store.Get(ctx, p.jid, false)
	return nil
}

// ListenAndServe stops in order when its context ends: the follow
// streams end with their last line, the running job gets its grace and
// ends, and only then are the parts after it (the plugins) stopped.
func TestListenAndServeStopsInOrder(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Grace: 10 * time.Second})})
	require.NoError(t, err)
	mux := http.NewServeMux()
	exehttp.New(eng, exehttp.Options{Prefix: "/exe"}).Register(mux)
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: []string{"localhost"},
		Execute: exe.ExecuteArgs{Cmd: "sleep 0.5"}})
	require.NoError(t, err)
	plugins := &part{engine: eng, store: store, jid: running}
	done := make(chan error, 1)
	handler := openapitest.Handler(t, mux, "/exe")
	go func() {
		done <- exehttp.ListenAndServe(ctx, &http.Server{Addr: addr, Handler: handler}, eng, exehttp.ServeOptions{Then: []exehttp.Shutdowner{plugins}})
	}()

	require.NoError(t, store.Create(context.Background(), &exe.Job{JID: "elsewhere", State: exe.JobRunning,
		StartAt: time.Now().Unix(), Request: exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}}}))
	var res *http.Response
	require.Eventually(t, func() bool {
		res, err = http.Get("http://" + addr + "/exe/jobs/elsewhere?follow=1")
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the server listens")
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	_, err = rd.ReadBytes('\n')
	require.NoError(t, err)

	cancel()
	last, err := rd.ReadBytes('\n')
	require.NoError(t, err)
	var end map[string]any
	require.NoError(t, json.Unmarshal(last, &end), string(last))
	assert.Equal(t, "stream ended: server shutting down", end["message"])
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
	require.Equal(t, 1, plugins.calls)
	assert.ErrorIs(t, plugins.busy, exe.ErrBusy, "the engine had stopped when the plugins were")
	require.NotNil(t, plugins.job)
	assert.Equal(t, exe.JobDone, plugins.job.State, "the running job had its grace, and ended, before the plugins stopped")
}

// An address that cannot be listened on is ListenAndServe's error, after
// the same shutdown: nothing is left running.
func TestListenAndServeAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	plugins := &part{engine: eng, store: store}
	err = exehttp.ListenAndServe(context.Background(), &http.Server{Addr: taken.Addr().String()}, eng, exehttp.ServeOptions{Then: []exehttp.Shutdowner{plugins}})
	var op *net.OpError
	assert.True(t, errors.As(err, &op), "%v", err)
	assert.Equal(t, 1, plugins.calls)
	assert.ErrorIs(t, plugins.busy, exe.ErrBusy)
}

// serveInBackground runs ListenAndServe on mux until the returned cancel;
// done receives what it returned.
func serveInBackground(t *testing.T, mux http.Handler, eng *exe.Engine, opts exehttp.ServeOptions) (base string, cancel func(), done <-chan error) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan error, 1)
	go func() { out <- exehttp.ListenAndServe(ctx, &http.Server{Addr: addr, Handler: mux}, eng, opts) }()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the server listens")
	return "http://" + addr, cancel, out
}

// returned waits, bounded, for ListenAndServe to return.
func returned(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("ListenAndServe did not return")
		return nil
	}
}

// A sync request in flight when the shutdown begins gets the grace
// period, not the whole sync timeout: then its command is cancelled and
// it answers its host FAILED "server shutdown".
func TestListenAndServeGivesSyncRequestsTheGrace(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x})
	require.NoError(t, err)
	mux := http.NewServeMux()
	exehttp.New(eng, exehttp.Options{Prefix: "/exe"}).Register(mux)
	base, cancel, done := serveInBackground(t, mux, eng, exehttp.ServeOptions{Grace: 300 * time.Millisecond})

	pidFile := filepath.Join(t.TempDir(), "pid")
	answer := make(chan map[string]map[string]any, 1)
	go func() {
		cmd := url.QueryEscape(fmt.Sprintf("echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; sleep 100", pidFile))
		res, err := http.Get(base + "/exe/execute?target=localhost&cmd=" + cmd)
		if !assert.NoError(t, err) {
			answer <- nil
			return
		}
		defer res.Body.Close()
		var out map[string]map[string]any
		assert.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		answer <- out
	}()
	testenv.WaitPIDFile(t, pidFile, 30*time.Second)
	cancel()
	select {
	case out := <-answer:
		require.Contains(t, out, "localhost")
		assert.Equal(t, "server shutdown", out["localhost"]["msg"], "%v", out)
		assert.EqualValues(t, exe.HostFailed, out["localhost"]["status"])
	case <-time.After(50 * time.Second): // the default sync timeout is 60s
		t.Fatal("the sync request did not answer within its grace")
	}
	require.NoError(t, returned(t, done))
}

// A long-lived handler of the service's own, which does not end on
// server shutdown, does not hold ListenAndServe: once the grace has
// passed and the Engine has stopped, its connection is closed, and
// ListenAndServe returns saying so.
func TestListenAndServeClosesRequestsThatOutlastTheGrace(t *testing.T) {
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: &plugintest.Executor{}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	exehttp.New(eng, exehttp.Options{Prefix: "/exe"}).Register(mux)
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the client or the connection goes
	})
	base, cancel, done := serveInBackground(t, mux, eng, exehttp.ServeOptions{Grace: 200 * time.Millisecond})
	res, err := http.Get(base + "/events")
	require.NoError(t, err)
	defer res.Body.Close()
	cancel()
	err = returned(t, done)
	assert.EqualError(t, err, "exehttp: requests were still in flight when the shutdown grace period had passed and the Engine had stopped; their connections were closed")
	_, err = io.ReadAll(res.Body)
	assert.Error(t, err, "the connection was closed under the request")
}

// What ListenAndServe cannot run with is refused before it serves.
func TestListenAndServeRefusesWhatCannotRun(t *testing.T) {
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: &plugintest.Executor{}})
	require.NoError(t, err)
	srv := &http.Server{Addr: testenv.FreeAddr(t)}
	var nilPart *part
	ctx := context.Background()
	for want, call := range map[string]func() error{
		"exehttp: ListenAndServe needs an *http.Server": func() error { return exehttp.ListenAndServe(ctx, nil, eng, exehttp.ServeOptions{}) },
		"exehttp: ListenAndServe needs an Engine":       func() error { return exehttp.ListenAndServe(ctx, srv, nil, exehttp.ServeOptions{}) },
		"exehttp: ServeOptions.Grace is negative (zero means the default)": func() error {
			return exehttp.ListenAndServe(ctx, srv, eng, exehttp.ServeOptions{Grace: -time.Second})
		},
		"exehttp: ServeOptions.Then[1] is nil": func() error {
			return exehttp.ListenAndServe(ctx, srv, eng, exehttp.ServeOptions{Then: []exehttp.Shutdowner{&part{}, nilPart}})
		},
	} {
		assert.EqualError(t, call(), want)
	}
	require.NoError(t, eng.Shutdown(ctx))
	err = exehttp.ListenAndServe(ctx, srv, eng, exehttp.ServeOptions{})
	assert.EqualError(t, err, "exehttp: ListenAndServe needs an Engine that has not been shut down")
}
