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

// engineOn is an Engine whose executor is the plugin c.
func engineOn(t *testing.T, c exe.Executor) (*exe.Engine, *memory.Store) {
	t.Helper()
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: c, SyncTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return eng, store
}

func refused(cmd string) exe.Request {
	return exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: cmd}}
}

// A plugin's executor refuses a request before it is stored or run: the
// refusal keeps its kind and message across the process boundary.
func TestValidateRequestCrossesTheBoundary(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	err := c.ValidateRequest(ctx, refused("refuse rm -rf"))
	assert.ErrorIs(t, err, exe.ErrInvalid)
	assert.EqualError(t, err, "cmd: refused: rm -rf")
	for _, ok := range []exe.Request{
		refused("echo hi"),
		{Operate: exe.OpPing, Targets: []string{"a"}},
		{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: "r", ExtraVars: map[string]any{"k": []any{1.0}}}},
		{Operate: exe.OpTask, Targets: []string{"a"}, Task: exe.TaskArgs{Type: "t", Options: map[string]any{"x": "y"}}},
	} {
		assert.NoError(t, c.ValidateRequest(ctx, ok), ok.Operate)
	}

	eng, store := engineOn(t, c)
	_, err = eng.Submit(ctx, refused("refuse rm -rf"))
	assert.ErrorIs(t, err, exe.ErrInvalid)
	assert.EqualError(t, err, "cmd: refused: rm -rf")
	ids, err := store.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "nothing was stored")
	_, err = eng.RunSync(ctx, refused("refuse rm -rf"))
	assert.EqualError(t, err, "cmd: refused: rm -rf", "sync runs are checked too")

	out, err := eng.RunSync(ctx, refused("echo hi"))
	require.NoError(t, err)
	assert.Equal(t, "echo hi", out["a"].Exec.Stdout)
}

// A plugin built before ValidateRequest existed answers it Unimplemented:
// it has no objections, and its requests run as before.
func TestValidateRequestOfAnOlderPlugin(t *testing.T) {
	c, _ := start(t, executor.Options{Env: []string{"EXE_TESTPLUGIN_OLD=1"}})
	ctx := context.Background()
	assert.NoError(t, c.ValidateRequest(ctx, refused("refuse rm -rf")))

	eng, _ := engineOn(t, c)
	jid, err := eng.Submit(ctx, refused("refuse x"))
	require.NoError(t, err)
	var evs []exe.Event
	job, err := eng.Follow(ctx, jid, func(ev exe.Event) error { evs = append(evs, ev); return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	require.Len(t, evs, 1)
	assert.Equal(t, "refuse x", evs[0].Exec.Stdout)
}

// A plugin says which operations its ValidateRequest checks, so that
// exed does not ask about the others (a round trip per request saved); an
// older plugin, which does not say, is asked about everything.
func TestValidatesCrossesTheBoundary(t *testing.T) {
	c, _ := start(t, executor.Options{})
	assert.True(t, c.Validates(exe.OpExecute))
	for _, op := range []exe.Operate{exe.OpPing, exe.OpFacter, exe.OpService, exe.OpDeploy, exe.OpTask} {
		assert.False(t, c.Validates(op), op)
	}
	old, _ := start(t, executor.Options{Env: []string{"EXE_TESTPLUGIN_OLD=1"}})
	for _, op := range []exe.Operate{exe.OpPing, exe.OpExecute, exe.OpTask} {
		assert.True(t, old.Validates(op), op)
	}
}

// matchesOf is testexec_matches_total: the Match calls the plugin answered.
func matchesOf(t *testing.T, c *executor.Client) float64 {
	t.Helper()
	mfs, err := c.Metrics(context.Background())
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "testexec_matches_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// A plugin says its Match answers change only when it is configured:
// exed keeps them, asking the plugin once for many requests, and asks
// again after each Reconfigure and each start of the plugin. An older
// plugin, which does not say, is asked for every request.
func TestMatchVersionCrossesTheBoundary(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	v1, ok := c.MatchVersion()
	require.True(t, ok)
	eng, _ := engineOn(t, c)
	ping := exe.Request{Operate: exe.OpPing, Targets: []string{"a"}}
	for range 3 {
		_, err := eng.Submit(ctx, ping)
		require.NoError(t, err)
	}
	assert.Equal(t, 1.0, matchesOf(t, c))

	require.NoError(t, c.Reconfigure(ctx))
	v2, ok := c.MatchVersion()
	require.True(t, ok)
	assert.Greater(t, v2, v1)
	_, err := eng.Submit(ctx, ping)
	require.NoError(t, err)
	assert.Equal(t, 2.0, matchesOf(t, c), "asked again after a Reconfigure")

	pid := c.PID()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return c.Health(ctx) == nil && c.PID() != pid }, 30*time.Second, 10*time.Millisecond)
	v3, ok := c.MatchVersion()
	require.True(t, ok)
	assert.Greater(t, v3, v2)
	_, err = eng.Submit(ctx, ping)
	require.NoError(t, err)
	assert.Equal(t, 1.0, matchesOf(t, c), "the new process was asked once")

	old, _ := start(t, executor.Options{Env: []string{"EXE_TESTPLUGIN_OLD=1"}})
	_, ok = old.MatchVersion()
	assert.False(t, ok)
}
