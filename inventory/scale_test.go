package inventory_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/invgen"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/require"
)

func writeGenerated(tb testing.TB, name, text string) string {
	p := filepath.Join(tb.TempDir(), name)
	require.NoError(tb, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// minDuration runs fn calls times in a row, a few rounds, and gives the
// least CPU time a round took per call. CPU time of this process, not wall
// time, so that other work on the machine does not count; the least, to
// leave out rounds that met a garbage collection of what came before.
func minDuration(tb testing.TB, rounds, calls int, fn func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for i := 0; i < rounds; i++ {
		start := cpuTime(tb)
		for j := 0; j < calls; j++ {
			fn()
		}
		if d := (cpuTime(tb) - start) / time.Duration(calls); d < best {
			best = d
		}
	}
	return best
}

// cpuTime is the user and system time this process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxGrowth bounds how much longer ten times the hosts may take. Linear
// code measures 10-30 here (garbage collection grows with the heap, and the
// machine is shared); the quadratic code this guards against measured 70
// to 160.
const maxGrowth = 50.0

// skipSlow skips the growth tests in -short runs and under the race
// detector, whose cost they would measure; make test runs them without it.
func skipSlow(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 300,000 hosts")
	}
	if raceEnabled {
		t.Skip("measured without the race detector (make test runs them so)")
	}
}

// TestLoadGrowsLinearly loads 10,000 and 100,000 hosts: ten times the hosts
// must take about ten times as long, not a hundred (a host added to a group
// used to be checked against every host already in it, a group added to
// all against every group already there).
func TestLoadGrowsLinearly(t *testing.T) {
	skipSlow(t)
	for _, format := range []struct {
		name string
		gen  func(int) string
	}{{"hosts.ini", invgen.INI}, {"hosts.yml", invgen.YAML}, {"groups.ini", invgen.GroupPerHost}} {
		t.Run(format.name, func(t *testing.T) {
			small := writeGenerated(t, format.name, format.gen(10000))
			large := writeGenerated(t, format.name, format.gen(100000))
			load := func(p string) func() {
				return func() {
					inv, err := inventory.Load(p)
					require.NoError(t, err)
					got, err := inv.Match("all[100:199]")
					require.NoError(t, err)
					require.Len(t, got, 100)
				}
			}
			ts := minDuration(t, 3, 1, load(small))
			tl := minDuration(t, 2, 1, load(large))
			ratio := float64(tl) / float64(ts)
			t.Logf("10k: %v, 100k: %v, ratio %.1f", ts, tl, ratio)
			require.Less(t, ratio, maxGrowth, "loading 10x the hosts took %.0fx as long", ratio)
		})
	}
}

// TestMatchGrowsLinearly does the same for patterns on a loaded inventory,
// also when a pattern matches a group per host.
func TestMatchGrowsLinearly(t *testing.T) {
	skipSlow(t)
	for _, c := range []struct {
		gen      func(int) string
		patterns []string
	}{
		{invgen.INI, []string{"all", "fleet:&racks:!rack0001", "node00*", "~node0000[0-9]", "racks[10:20]"}},
		{invgen.GroupPerHost, []string{"g0*", "g0*[5:]:!g000007"}},
	} {
		// Each inventory is measured alone in the heap.
		times := func(n, calls int) []time.Duration {
			inv, err := inventory.Parse(strings.NewReader(c.gen(n)), "hosts.ini")
			require.NoError(t, err)
			out := make([]time.Duration, len(c.patterns))
			for i, p := range c.patterns {
				out[i] = minDuration(t, 7, calls, func() {
					_, err := inv.Match(p)
					require.NoError(t, err)
				})
			}
			return out
		}
		small, large := times(10000, 100), times(100000, 10)
		for i, p := range c.patterns {
			ts, tl := small[i], large[i]
			ratio := float64(tl) / float64(ts)
			t.Logf("%s: 10k: %v, 100k: %v, ratio %.1f", p, ts, tl, ratio)
			require.Less(t, ratio, maxGrowth, "%s: matching on 10x the hosts took %.0fx as long", p, ratio)
		}
	}
}
