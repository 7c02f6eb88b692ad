package exe_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forksEngine is an Engine over six local hosts whose executor works on
// up to 50 at once, with the server's bound maxForks.
func forksEngine(t *testing.T, maxForks int) *harness {
	t.Helper()
	inv, err := inventory.Parse(strings.NewReader("[fleet]\nh[1:6] ansible_connection=local\n"), "fleet.ini")
	require.NoError(t, err)
	x, err := sshnative.New(sshnative.Config{Inventory: inv})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, MaxForks: maxForks})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return &harness{engine: eng, store: store}
}

// A request's Forks bounds its job's hosts at once; one above the
// Engine's MaxForks is lowered to it, and the job records what it ran
// with. Without Forks the executor's own bound applies and the job
// object has no "forks" member.
func TestForks(t *testing.T) {
	h := forksEngine(t, 3)
	ctx := context.Background()
	hosts := []string{"h1", "h2", "h3", "h4", "h5", "h6"}
	for _, c := range []struct{ forks, want int }{{2, 2}, {10, 3}} {
		probe := testenv.NewForksProbe(t, t.TempDir())
		jid, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: hosts,
			Execute: exe.ExecuteArgs{Cmd: probe.Cmd()}, Forks: c.forks})
		require.NoError(t, err)
		probe.Drive(len(hosts), c.want)
		job, _ := h.wait(t, jid)
		assert.Equal(t, exe.JobDone, job.State, job.Error)
		assert.Equal(t, c.want, job.Forks, "the job records the forks it ran with")
		assert.Equal(t, c.want, slices.Max(probe.Seen()))
		b, err := json.Marshal(job)
		require.NoError(t, err)
		var raw map[string]any
		require.NoError(t, json.Unmarshal(b, &raw))
		assert.EqualValues(t, c.want, raw["forks"])
		var back exe.Job
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, c.want, back.Forks)
	}

	// Sync: the same bound.
	probe := testenv.NewForksProbe(t, t.TempDir())
	done := make(chan map[string]exe.Event, 1)
	go func() {
		res, err := h.engine.RunSync(ctx, exe.Request{Operate: exe.OpExecute, Targets: hosts,
			Execute: exe.ExecuteArgs{Cmd: probe.Cmd()}, Forks: 2})
		assert.NoError(t, err)
		done <- res
	}()
	probe.Drive(len(hosts), 2)
	res := <-done
	for _, host := range hosts {
		assert.Equal(t, exe.HostChanged, res[host].Status, host)
	}

	jid, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"h1"}})
	require.NoError(t, err)
	job, _ := h.wait(t, jid)
	assert.Zero(t, job.Forks)
	b, err := json.Marshal(job)
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"forks"`)
}

// Negative forks, and forks on a task, are refused before anything is
// stored.
func TestForksRefused(t *testing.T) {
	h := forksEngine(t, 0)
	ctx := context.Background()
	for _, c := range []struct {
		req exe.Request
		msg string
	}{
		{exe.Request{Operate: exe.OpPing, Targets: []string{"h1"}, Forks: -1},
			"forks: must be a positive integer (hosts at once; 0 or absent: the server's concurrency)"},
		{exe.Request{Operate: exe.OpTask, Targets: []string{"h1"}, Task: exe.TaskArgs{Type: "rollingrestart"}, Forks: 2},
			"forks: tasks pace their hosts themselves (as a rolling restart's batch size does); forks applies to ping, facter, service, execute and deploy"},
	} {
		_, err := h.engine.Submit(ctx, c.req)
		require.ErrorIs(t, err, exe.ErrInvalid)
		assert.EqualError(t, err, c.msg)
		_, err = h.engine.RunSync(ctx, c.req)
		assert.ErrorIs(t, err, exe.ErrInvalid)
	}
	jobs, err := h.engine.Jobs(ctx)
	require.NoError(t, err)
	assert.Empty(t, jobs)
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	_, err = exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x, MaxForks: -1})
	assert.EqualError(t, err, "exe: Config.MaxForks is negative (zero means the default)")
}
