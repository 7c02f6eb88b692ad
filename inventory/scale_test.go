package inventory_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/internal/invgen"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
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
	// CLOCK_PROCESS_CPUTIME_ID, not getrusage(2): the kernel adjusts
	// rusage's user and system times so that neither goes back, which
	// holds the sum still for a while, and a minimum over short rounds
	// picks those (1.3 µs for a match that takes 10).
	var ts unix.Timespec
	require.NoError(tb, unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts))
	return time.Duration(ts.Nano())
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

// growth measures fn at each size (1,000, 10,000 and 100,000 hosts) with
// what prepare makes of that size, and fails when ten times the hosts
// take more than maxGrowth times as long. Each size is prepared alone in
// the heap; fn runs calls(n) times in a row, a few rounds.
func growth[T any](t *testing.T, name string, prepare func(n int) T, fn func(T)) {
	t.Helper()
	var prev time.Duration
	for _, n := range []int{1000, 10000, 100000} {
		arg := prepare(n)
		runtime.GC()
		calls := max(1, 10000/n)
		d := minDuration(t, min(3, 200000/n), calls, func() { fn(arg) })
		t.Logf("%s: %d hosts: %v", name, n, d)
		if prev > 0 {
			ratio := float64(d) / float64(prev)
			require.Less(t, ratio, maxGrowth, "%s: %d hosts took %.0fx as long as a tenth as many", name, n, ratio)
		}
		prev = d
	}
}

// TestLoadGrowsLinearly loads 1,000, 10,000 and 100,000 hosts: ten times
// the hosts must take about ten times as long, not a hundred (a host added
// to a group used to be checked against every host already in it, a group
// added to all against every group already there). The shapes: one group
// of every host and racks under a parent (INI, YAML), a group per host,
// and 200 groups nested three deep with variables at every level.
func TestLoadGrowsLinearly(t *testing.T) {
	skipSlow(t)
	for _, format := range []struct {
		name string
		gen  func(int) string
	}{
		{"hosts.ini", invgen.INI}, {"hosts.yml", invgen.YAML}, {"groups.ini", invgen.GroupPerHost},
		{"nested.ini", invgen.Nested},
	} {
		t.Run(format.name, func(t *testing.T) {
			growth(t, format.name, func(n int) string {
				return writeGenerated(t, format.name, format.gen(n))
			}, func(p string) {
				inv, err := inventory.Load(p)
				require.NoError(t, err)
				got, err := inv.Match("all[100:199]")
				require.NoError(t, err)
				require.Len(t, got, 100)
			})
		})
	}
}

// TestHostVarsGrowsLinearly resolves the variables of every host of the
// nested inventory, as an operation on all of them does: the cost per host
// must not grow with the inventory (each host's groups and ancestors are
// sorted once per group, not walked and sorted per host). So must reading
// each host's connection and a variable through HostVars, as an executor
// sets hosts up.
func TestHostVarsGrowsLinearly(t *testing.T) {
	skipSlow(t)
	type loaded struct {
		inv   *inventory.Inventory
		hosts []string
	}
	load := func(n int) loaded {
		inv, err := inventory.Parse(strings.NewReader(invgen.Nested(n)), "hosts.ini")
		require.NoError(t, err)
		return loaded{inv, inv.Hosts()}
	}
	growth(t, "Host", load, func(l loaded) {
		for _, name := range l.hosts {
			h := l.inv.Host(name)
			if h == nil || h.Vars["zone"] == nil || h.Vars["ansible_host"] == nil {
				t.Fatalf("%s: %v", name, h)
			}
		}
	})
	growth(t, "HostVars", load, func(l loaded) {
		for _, name := range l.hosts {
			h, ok := l.inv.HostVars(name)
			c, err := h.Conn(nil)
			if zone, _ := h.Get("zone"); !ok || err != nil || c.Port == 0 || zone == nil {
				t.Fatalf("%s: %v %v", name, c, err)
			}
		}
	})
}

// TestMatchGrowsLinearly does the same for patterns on a loaded inventory,
// also when a pattern matches a group per host and when it has a term per
// tenth of the hosts (each term used to re-read the hosts selected so far).
// Its bound is on the growth from 1,000 to 100,000 hosts, as a growth per
// tenfold (the square root): a match of 10,000 hosts that runs in the
// processor's caches, where those of 100,000 do not, makes one step look
// steep (77 µs then 4.2 ms, after 39 µs at 1,000 hosts) while the whole
// range is linear. Each step must stay under twice the bound.
func TestMatchGrowsLinearly(t *testing.T) {
	skipSlow(t)
	for _, c := range []struct {
		gen      func(int) string
		patterns []func(n int) string
	}{
		{invgen.INI, fixed("all", "fleet:&racks:!rack0001", "node00*", "~node0000[0-9]", "racks[10:20]")},
		{invgen.GroupPerHost, append(fixed("g0*", "g0*[5:]:!g000007"), termPerTenth("g%06d", ","), termPerTenth("!g%06d", ":"))},
		{invgen.Nested, append(fixed("estate", "region0:&zone0*:!svc001", "svc0[0-4]?", "~node00[0-9]"), termPerTenth("&"+"node%06d.example.com", ","))},
	} {
		type loaded struct {
			inv      *inventory.Inventory
			patterns []string
		}
		times := make([][]time.Duration, len(c.patterns))
		for _, n := range []int{1000, 10000, 100000} {
			inv, err := inventory.Parse(strings.NewReader(c.gen(n)), "hosts.ini")
			require.NoError(t, err)
			runtime.GC()
			for i, p := range c.patterns {
				pattern := p(n)
				times[i] = append(times[i], minDuration(t, 7, 200000/n, func() {
					_, err := inv.Match(pattern)
					require.NoError(t, err)
				}))
			}
		}
		for i, p := range c.patterns {
			name := p(10)
			for j := 1; j < len(times[i]); j++ {
				ratio := float64(times[i][j]) / float64(times[i][j-1])
				t.Logf("%.60s: %v then %v, ratio %.1f", name, times[i][j-1], times[i][j], ratio)
				require.Less(t, ratio, 2*maxGrowth, "%s: matching on 10x the hosts took %.0fx as long", name, ratio)
			}
			last := len(times[i]) - 1
			perTenfold := math.Sqrt(float64(times[i][last]) / float64(times[i][0]))
			require.Less(t, perTenfold, maxGrowth, "%s: matching on 100x the hosts took %.0fx as long (%.0fx per tenfold)",
				name, perTenfold*perTenfold, perTenfold)
		}
	}
}

// fixed are patterns that do not depend on the inventory's size.
func fixed(patterns ...string) []func(int) string {
	out := make([]func(int) string, len(patterns))
	for i, p := range patterns {
		out[i] = func(int) string { return p }
	}
	return out
}

// termPerTenth is a pattern with a term for every tenth host (format
// applied to its number), joined by sep.
func termPerTenth(format, sep string) func(int) string {
	return func(n int) string {
		terms := make([]string, 0, n/10)
		for i := 0; i < n; i += 10 {
			terms = append(terms, fmt.Sprintf(format, i))
		}
		if strings.HasPrefix(format, "!") || strings.HasPrefix(format, "&") {
			terms = append([]string{"all"}, terms...)
		}
		return strings.Join(terms, sep)
	}
}
