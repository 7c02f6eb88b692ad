package sshnative_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request's forks bounds its operation's fan-out below the executor's
// own Forks, and never above it: six hosts, each blocked until the probe
// lets it go, run two at a time with forks 2 of 4, and three at a time
// with forks 5 of 3.
func TestRequestForks(t *testing.T) {
	inv, err := inventory.Parse(strings.NewReader("[fleet]\nh[1:6] ansible_connection=local\n"), "fleet.ini")
	require.NoError(t, err)
	hosts := []string{"h1", "h2", "h3", "h4", "h5", "h6"}
	for _, c := range []struct{ config, request, want int }{{4, 2, 2}, {3, 5, 3}} {
		x := newExec(t, sshnative.Config{Inventory: inv, Forks: c.config})
		probe := testenv.NewForksProbe(t, t.TempDir())
		done := make(chan map[string]exe.Event, 1)
		go func() {
			var mu sync.Mutex // hosts emit from goroutines of their own
			out := map[string]exe.Event{}
			err := exe.Perform(context.Background(), x, nil, exe.Request{Operate: exe.OpExecute, Targets: hosts,
				Execute: exe.ExecuteArgs{Cmd: probe.Cmd()}, Forks: c.request}, func(ev exe.Event) {
				mu.Lock()
				defer mu.Unlock()
				out[ev.Host] = ev
			})
			assert.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			done <- out
		}()
		probe.Drive(len(hosts), c.want)
		out := <-done
		require.Len(t, out, len(hosts))
		for _, h := range hosts {
			assert.Equal(t, exe.HostChanged, out[h].Status, "%s: %s", h, out[h].Msg)
			assert.Equal(t, "released\n", out[h].Exec.Stdout, h)
		}
		seen := probe.Seen()
		require.Len(t, seen, len(hosts))
		assert.Equal(t, c.want, slices.Max(seen), "forks %d of %d: the most hosts seen running", c.request, c.config)
	}
}
