package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
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
	go func() { done <- exehttp.ListenAndServe(ctx, &http.Server{Addr: addr, Handler: handler}, eng, plugins) }()

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
	err = exehttp.ListenAndServe(context.Background(), &http.Server{Addr: taken.Addr().String()}, eng, plugins)
	var op *net.OpError
	assert.True(t, errors.As(err, &op), "%v", err)
	assert.Equal(t, 1, plugins.calls)
	assert.ErrorIs(t, plugins.busy, exe.ErrBusy)
}
