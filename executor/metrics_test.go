package executor_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callsOf is testexec_calls_total{operation=op} in what the plugin sent.
func callsOf(t *testing.T, mfs []*dto.MetricFamily, op string) float64 {
	t.Helper()
	for _, mf := range mfs {
		if mf.GetName() != "testexec_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A plugin's own metrics (its registry: executor.Gatherer) cross the
// process boundary as they are when asked.
func TestMetricsCrossTheBoundary(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		require.NoError(t, c.Execute(ctx, []string{"a", "b"}, exe.ExecuteArgs{Cmd: "echo"}, func(exe.Event) {}))
	}
	require.NoError(t, c.Ping(ctx, []string{"a"}, func(exe.Event) {}))
	mfs, err := c.Metrics(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3.0, callsOf(t, mfs, "execute"))
	assert.Equal(t, 1.0, callsOf(t, mfs, "ping"))
	require.Len(t, mfs, 1)
	assert.Equal(t, dto.MetricType_COUNTER, mfs[0].GetType())
	assert.Equal(t, "Operations testexec was called for.", mfs[0].GetHelp())
}

// A plugin built before the Metrics call answers it Unimplemented: it has
// no metrics, which is no error, and the rest works as before.
func TestMetricsOfAnOlderPlugin(t *testing.T) {
	c, _ := start(t, executor.Options{Env: []string{"EXE_TESTPLUGIN_OLD=1"}})
	ctx := context.Background()
	require.NoError(t, c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "echo"}, func(exe.Event) {}))
	mfs, err := c.Metrics(ctx)
	assert.NoError(t, err)
	assert.Empty(t, mfs)
}

// Restarts counts the processes started after one ended; a plugin that
// was started again has metrics of its own process only.
func TestRestartsAreCounted(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	assert.Zero(t, c.Restarts())
	require.NoError(t, c.Ping(ctx, []string{"a"}, func(exe.Event) {}))
	for i := 1; i <= 2; i++ {
		pid := c.PID()
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		require.Eventually(t, func() bool { p := c.PID(); return p != 0 && p != pid }, 10*time.Second, 10*time.Millisecond)
		assert.EqualValues(t, i, c.Restarts())
	}
	mfs, err := c.Metrics(ctx)
	require.NoError(t, err)
	assert.Zero(t, callsOf(t, mfs, "ping"), "the new process has not pinged")
}
