package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/internal/redistest"
	"github.com/0ops/exed/jobstore/memory"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFollowEndsOnShutdown: a follow stream ends, before its job does,
// when the http.Server that serves it shuts down (no BaseContext of the
// embedder's needed: Shutdown returns at once), or when the Engine shuts
// down and the job runs elsewhere: its last line is the job as last
// known, Running, with a message saying why.
func TestFollowEndsOnShutdown(t *testing.T) {
	for _, stop := range []struct {
		name string
		stop func(*http.Server, *exe.Engine) error
	}{
		{"server", func(srv *http.Server, _ *exe.Engine) error { return srv.Shutdown(context.Background()) }},
		{"engine", func(_ *http.Server, eng *exe.Engine) error { return eng.Shutdown(context.Background()) }},
	} {
		t.Run(stop.name, func(t *testing.T) {
			x, err := sshnative.New(sshnative.Config{})
			require.NoError(t, err)
			store := memory.New(memory.Options{})
			eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
			require.NoError(t, err)
			t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			srv := &http.Server{Handler: openapitest.Handler(t, exehttp.New(eng, exehttp.Options{}), "")}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Close() })

			// A running job that no worker of this engine runs (another
			// process's worker would): it does not end with the engine.
			jid := "elsewhere"
			require.NoError(t, store.Create(context.Background(), &exe.Job{JID: jid, State: exe.JobRunning,
				StartAt: time.Now().Unix(), Request: exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}}}))
			res, err := http.Get("http://" + ln.Addr().String() + "/jobs/" + jid + "?follow=1")
			require.NoError(t, err)
			defer res.Body.Close()
			rd := bufio.NewReader(res.Body)
			_, err = rd.ReadBytes('\n')
			require.NoError(t, err)

			stopped := make(chan error, 1)
			go func() { stopped <- stop.stop(srv, eng) }()
			last, err := rd.ReadBytes('\n')
			require.NoError(t, err, "a last line comes")
			var end map[string]any
			require.NoError(t, json.Unmarshal(last, &end), string(last))
			assert.Equal(t, "stream ended: server shutting down", end["message"])
			assert.Equal(t, jid, end["jid"], "the line is the job object")
			assert.EqualValues(t, exe.JobRunning, end["state"], "as last known: not ended")
			var job exe.Job
			require.NoError(t, json.Unmarshal(last, &job), "clients that read it as a job get one")
			assert.Equal(t, exe.JobRunning, job.State)
			_, err = rd.ReadByte()
			assert.ErrorIs(t, err, io.EOF)
			select {
			case err := <-stopped:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Fatal("shutdown waited for the stream")
			}
		})
	}
}

// TestHealthzDegraded: with a Redis dispatcher and no worker, the server
// still serves: /healthz is 200 and says "degraded", and why.
func TestHealthzDegraded(t *testing.T) {
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	store := exeredis.New(rdb, exeredis.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Dispatcher: exeredis.NewDispatcher(store, exeredis.DispatcherOptions{}), Executor: x})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ts := httptest.NewServer(openapitest.Handler(t, exehttp.New(eng, exehttp.Options{}), ""))
	t.Cleanup(ts.Close)
	res, err := http.Get(ts.URL + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.JSONEq(t, `{"status":"degraded","message":"dispatcher: no worker has been seen yet: queued jobs wait until one starts"}`, string(body))

	srv.Stop()
	res, err = http.Get(ts.URL + "/healthz")
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.JSONEq(t, `{"status":"unavailable","message":"store: job store: redis is not reachable"}`, string(body))
}
