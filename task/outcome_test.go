package task_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/task"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restartHangs is the test executor with a restart that runs until its
// call ends: started receives each host whose restart began.
type restartHangs struct {
	plugintest.Executor
	started chan string
	release chan struct{}
}

func (x *restartHangs) Service(ctx context.Context, hosts []string, _ exe.ServiceArgs, emit exe.Emit) error {
	for _, h := range hosts {
		x.started <- h
	}
	select {
	case <-ctx.Done():
	case <-x.release:
	}
	return context.Cause(ctx)
}

// kill -9 of the rolling-restart plugin mid-restart: the job fails with
// what happened to the plugin, and every host has an event that says its
// restart did not complete and may still run (the host being restarted,
// and the hosts of later batches, which the server cannot tell apart).
func TestKilledTaskPluginLeavesNoHostSilent(t *testing.T) {
	c, err := task.Start(context.Background(), task.Options{Name: "rollingrestart", Path: bins["exe-task-rollingrestart"]})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	x := &restartHangs{started: make(chan string, 3), release: make(chan struct{})}
	t.Cleanup(func() { close(x.release) })
	tasks := map[string]exe.Task{"rollingrestart": c}
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, Tasks: tasks})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })

	jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpTask, Targets: []string{"a", "b", "c"},
		Task: exe.TaskArgs{Name: "rr", Type: "rollingrestart", Options: map[string]any{"service": "app", "batch": 1.0}}})
	require.NoError(t, err)
	select {
	case h := <-x.started:
		require.Equal(t, "a", h)
	case <-time.After(30 * time.Second):
		t.Fatal("the restart did not start")
	}
	require.NoError(t, syscall.Kill(c.PID(), syscall.SIGKILL))
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	job, err := eng.Follow(fctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "task plugin rollingrestart exited (signal: killed)", job.Error)
	job, err = eng.Job(ctx, jid, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "b", "c"} {
		evs := job.ReturnData[h]
		require.Len(t, evs, 1, h)
		assert.Equal(t, exe.HostFailed, evs[0].Status, h)
		assert.Equal(t, "not completed: task plugin rollingrestart exited (signal: killed); the remote command may still be running", evs[0].Msg, h)
	}
}
