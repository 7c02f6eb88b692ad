package executor_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jobEngine runs jobs on the executor c as the server does: memory store,
// in-process dispatch.
func jobEngine(t *testing.T, c exe.Executor) *exe.Engine {
	t.Helper()
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: c})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return eng
}

// After a cancel, a host the plugin did not report may have been running
// (the plugin does not say it never started it): it ends FAILED saying
// so, not SKIPPED "cancelled before start".
func TestCancelledHostsThePluginDidNotReport(t *testing.T) {
	c, _ := start(t, executor.Options{})
	eng := jobEngine(t, c)
	ctx := context.Background()
	jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b", "c"}, Execute: exe.ExecuteArgs{Cmd: "block"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		job, err := eng.Job(ctx, jid, true)
		return err == nil && len(job.ReturnData["a"]) > 0
	}, 30*time.Second, 10*time.Millisecond, "the plugin started the job")
	job, err := eng.Cancel(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, "cancelled", job.Error)
	job, err = eng.Job(ctx, jid, true)
	require.NoError(t, err)
	a := job.ReturnData["a"]
	require.Len(t, a, 2)
	assert.Equal(t, "stopped", a[1].Name)
	for _, h := range []string{"b", "c"} {
		require.Len(t, job.ReturnData[h], 1, h)
		ev := job.ReturnData[h][0]
		assert.Equal(t, exe.HostFailed, ev.Status, h)
		assert.Equal(t, "cancelled; no result was reported, the command may have been running", ev.Msg, h)
	}
}

// An operation that fails as a whole (the plugin returned an error) leaves
// no host without an event.
func TestFailedOperationGivesEveryHostAnEvent(t *testing.T) {
	c, _ := start(t, executor.Options{})
	eng := jobEngine(t, c)
	ctx := context.Background()
	jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"}, Execute: exe.ExecuteArgs{Cmd: "fail"}})
	require.NoError(t, err)
	job, err := eng.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "testexec: failed on request", job.Error)
	job, err = eng.Job(ctx, jid, true)
	require.NoError(t, err)
	for _, h := range []string{"a", "b"} {
		assert.Equal(t, []exe.Event{{Host: h, Status: exe.HostFailed, Seq: job.ReturnData[h][0].Seq,
			Msg: "not completed: testexec: failed on request; the remote command may still be running"}}, job.ReturnData[h], h)
	}
}

// A clean shutdown is quiet: the plugin exits when asked, and nothing
// warns that it "failed to exit gracefully".
func TestCleanShutdownIsQuiet(t *testing.T) {
	c, logs := start(t, executor.Options{})
	require.NoError(t, c.Ping(context.Background(), []string{"a"}, func(exe.Event) {}))
	pid := c.PID()
	require.NotZero(t, pid)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.Shutdown(ctx))
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the plugin exited")
	assert.NotContains(t, logs.String(), "[WARN]")
	assert.NotContains(t, logs.String(), "[ERROR]")
}
