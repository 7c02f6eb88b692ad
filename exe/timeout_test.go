package exe_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A job's timeout ends it like a cancel ends it, but as a failure of the
// hosts it did not finish: the host that had finished keeps its result,
// the one running is stopped (its command too) and FAILED with what it
// printed, the one never started is FAILED "timed out before start"; the
// job's error says how long it was given.
func TestJobTimeout(t *testing.T) {
	h := localFleet(t, exe.LocalOptions{})
	ctx := context.Background()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	jid, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b", "c"},
		Execute: exe.ExecuteArgs{Cmd: firstFastThenStuck(dir, pidFile)}, Timeout: 1500 * time.Millisecond})
	require.NoError(t, err)
	pid := testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	job, _ := h.wait(t, jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "timed out after 1.5 seconds", job.Error)
	assert.Equal(t, 1500*time.Millisecond, job.Timeout, "the job keeps its timeout")
	job, err = h.engine.Job(ctx, jid, true)
	require.NoError(t, err)
	require.Len(t, job.ReturnData, 3, "%v", job.ReturnData)
	assert.Equal(t, exe.Event{Host: "a", Seq: 1, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: "fast\n"}}, job.ReturnData["a"][0])
	assert.Equal(t, exe.Event{Host: "b", Seq: 2, Status: exe.HostFailed, Msg: "command timed out",
		Exec: &exe.ExecResult{RTC: -1, Stdout: "started\n"}}, job.ReturnData["b"][0])
	assert.Equal(t, exe.Event{Host: "c", Seq: 3, Status: exe.HostFailed, Msg: "timed out before start"}, job.ReturnData["c"][0])
	require.Eventually(t, func() bool { return testenv.Ended(pid) }, 5*time.Second, 10*time.Millisecond,
		"the command that ignores SIGHUP was stopped")
}

// A sync request's timeout shortens the server's sync timeout; it may
// not lengthen it, and an async one may not pass the server's maximum.
func TestTimeoutBounds(t *testing.T) {
	h := localFleet(t, exe.LocalOptions{})
	ctx := context.Background()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	res, err := h.engine.RunSync(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"},
		Execute: exe.ExecuteArgs{Cmd: firstFastThenStuck(dir, pidFile)}, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, exe.HostChanged, res["a"].Status)
	assert.Equal(t, exe.HostFailed, res["b"].Status)
	assert.Equal(t, "command timed out", res["b"].Msg)
	assert.Equal(t, "started\n", res["b"].Exec.Stdout)

	_, err = h.engine.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a"}, Timeout: exe.DefaultSyncTimeout + time.Second})
	require.ErrorIs(t, err, exe.ErrInvalid)
	assert.EqualError(t, err, "timeout: at most 60 seconds for a sync request (the server's sync timeout); submit an async job (POST) to run longer")
	_, err = h.engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a"}, Timeout: exe.DefaultMaxTimeout + time.Second})
	require.ErrorIs(t, err, exe.ErrInvalid)
	assert.EqualError(t, err, "timeout: at most 86400 seconds (the server's maximum)")
	_, err = h.engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a"}, Timeout: -time.Second})
	require.ErrorIs(t, err, exe.ErrInvalid)
	jobs, err := h.engine.Jobs(ctx)
	require.NoError(t, err)
	assert.Empty(t, jobs, "a refused request stores nothing")
}

// A timeout is kept to the millisecond; a positive one below that is a
// millisecond, never 0, which would mean no timeout at all.
func TestSecondsDuration(t *testing.T) {
	for secs, want := range map[float64]time.Duration{
		0: 0, 1e-9: time.Millisecond, 0.0004: time.Millisecond, 0.0016: 2 * time.Millisecond, 1.5: 1500 * time.Millisecond,
	} {
		got, err := exe.SecondsDuration(secs)
		require.NoError(t, err, secs)
		assert.Equal(t, want, got, secs)
	}
}
