package inventory_test

import (
	"os"
	"path/filepath"
	"strings"
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
// fastest round per call: the one least disturbed by other work on the
// machine and by garbage collection.
func minDuration(tb testing.TB, rounds, calls int, fn func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for i := 0; i < rounds; i++ {
		start := time.Now()
		for j := 0; j < calls; j++ {
			fn()
		}
		if d := time.Since(start) / time.Duration(calls); d < best {
			best = d
		}
	}
	return best
}

// TestLoadGrowsLinearly loads 10,000 and 100,000 hosts: ten times the hosts
// must take about ten times as long, not a hundred (a host added to a group
// used to be checked against every host already in it, a group added to
// all against every group already there). The bound leaves room for a
// loaded machine, and is far below quadratic growth.
func TestLoadGrowsLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 220,000 hosts")
	}
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
			require.Less(t, ratio, 30.0, "loading 10x the hosts took %.0fx as long", ratio)
		})
	}
}

// TestMatchGrowsLinearly does the same for patterns on a loaded inventory,
// also when a pattern matches a group per host.
func TestMatchGrowsLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 220,000 hosts")
	}
	for _, c := range []struct {
		gen      func(int) string
		patterns []string
	}{
		{invgen.INI, []string{"all", "fleet:&racks:!rack0001", "node00*", "~node0000[0-9]", "racks[10:20]"}},
		{invgen.GroupPerHost, []string{"g0*", "g0*[5:]:!g000007"}},
	} {
		small, err := inventory.Parse(strings.NewReader(c.gen(10000)), "hosts.ini")
		require.NoError(t, err)
		large, err := inventory.Parse(strings.NewReader(c.gen(100000)), "hosts.ini")
		require.NoError(t, err)
		for _, p := range c.patterns {
			match := func(inv *inventory.Inventory) func() {
				return func() {
					_, err := inv.Match(p)
					require.NoError(t, err)
				}
			}
			ts := minDuration(t, 7, 30, match(small))
			tl := minDuration(t, 7, 3, match(large))
			ratio := float64(tl) / float64(ts)
			t.Logf("%s: 10k: %v, 100k: %v, ratio %.1f", p, ts, tl, ratio)
			require.Less(t, ratio, 30.0, "%s: matching on 10x the hosts took %.0fx as long", p, ratio)
		}
	}
}
