package ansible_test

import (
	"context"
	"slices"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/plugins/ansible"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request's forks reaches ansible as --forks: five local hosts, each
// blocked until the probe lets it go, run two at a time with forks 2
// under an executor of forks 5. (That the executor's own bound caps a
// larger request is exe.BoundForks, tested with sshnative.)
func TestRequestForks(t *testing.T) {
	x := newExecutor(t, t.TempDir(), "[local]\nl[1:5] ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n", ansible.Config{Forks: 5})
	hosts := []string{"l1", "l2", "l3", "l4", "l5"}
	probe := testenv.NewForksProbe(t, t.TempDir())
	var col collector
	done := make(chan error, 1)
	go func() {
		done <- exe.Perform(context.Background(), x, nil, exe.Request{Operate: exe.OpExecute, Targets: hosts,
			Execute: exe.ExecuteArgs{Cmd: probe.Cmd()}, Forks: 2}, col.emit)
	}()
	probe.Drive(len(hosts), 2)
	require.NoError(t, <-done)
	evs := col.byHost()
	for _, h := range hosts {
		require.Len(t, evs[h], 1, h)
		assert.Equal(t, exe.HostChanged, evs[h][0].Status, "%s: %s", h, evs[h][0].Msg)
		assert.Equal(t, "released", evs[h][0].Exec.Stdout, h)
	}
	assert.Equal(t, 2, slices.Max(probe.Seen()))
}
