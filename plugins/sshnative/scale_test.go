package sshnative

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/internal/invgen"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// scaleExecutor is sshnative on the generated nested inventory of n hosts
// (internal/invgen), with no ssh_config, so that only exed is measured.
func scaleExecutor(tb testing.TB, n int) (*Executor, []string) {
	tb.Helper()
	inv, err := inventory.Parse(strings.NewReader(invgen.Nested(n)), "hosts.ini")
	require.NoError(tb, err)
	x, err := New(Config{Inventory: inv, SSH: SSHOptions{SSHConfig: "none", NoAgent: true}})
	require.NoError(tb, err)
	tb.Cleanup(func() { x.Close() })
	hosts := inv.Hosts()
	require.Len(tb, hosts, n)
	return x, hosts
}

// resolveTargets is what an operation does for each targeted host before
// connecting: the host's variables, its connection settings, its ssh
// endpoint and become, from a fresh view (nothing set up yet). It fails
// unless every host resolves.
func resolveTargets(tb testing.TB, x *Executor, hosts []string) {
	v := newInventoryView(x.view().inv)
	for _, name := range hosts {
		h, ok := v.inv.HostVars(name)
		if !ok {
			tb.Fatalf("%s: not in the inventory", name)
		}
		c, err := x.hostConn(v, h)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		sc, ok := c.(*sshConn)
		if !ok || sc.ep.port == 0 || sc.become == nil {
			tb.Fatalf("%s: resolved to %#v", name, c)
		}
	}
}

// cpuTime is the user and system time this process has used: the
// machine is shared, and wall time would count the others' work.
func cpuTime(tb testing.TB) time.Duration {
	// CLOCK_PROCESS_CPUTIME_ID, not getrusage(2): the kernel adjusts
	// rusage's user and system times so that neither goes back, which
	// holds the sum still for a while, and a minimum over short rounds
	// picks those (1.3 µs for a match that takes 10).
	var ts unix.Timespec
	require.NoError(tb, unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts))
	return time.Duration(ts.Nano())
}

// TestResolveGrowsLinearly resolves every host of inventories of 1,000,
// 10,000 and 100,000 hosts: ten times the hosts must take about ten times
// the CPU time, not a hundred. Run by make test without the race detector.
func TestResolveGrowsLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("resolves 111,000 hosts")
	}
	if raceEnabled {
		t.Skip("measured without the race detector (make test runs it so)")
	}
	// Linear code measures 8-15 from one size to the next here (garbage
	// collection grows with the heap; the machine is shared); per-host
	// walks of the inventory would measure 50 to 100.
	const maxGrowth = 40.0
	var prev time.Duration
	for _, n := range []int{1000, 10000, 100000} {
		x, hosts := scaleExecutor(t, n)
		best := time.Duration(1<<63 - 1)
		for range min(3, 200000/n) {
			runtime.GC()
			start := cpuTime(t)
			resolveTargets(t, x, hosts)
			best = min(best, cpuTime(t)-start)
		}
		t.Logf("%d hosts: %v, %.2f µs/host", n, best, float64(best.Microseconds())/float64(n))
		if prev > 0 {
			ratio := float64(best) / float64(prev)
			require.Less(t, ratio, maxGrowth, "%d hosts took %.0fx the CPU time of a tenth as many", n, ratio)
		}
		prev = best
	}
}

// heapMB is the live heap after collecting, in MiB.
func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkResolveTargets resolves every host of the generated nested
// inventory as an operation does before connecting (see resolveTargets),
// reporting wall and CPU time per host, and the executor's live heap once
// loaded (heap-MB: the inventory and the executor, nothing resolved) and
// once every host is resolved and kept (heap-resolved-MB).
func BenchmarkResolveTargets(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			base := heapMB()
			x, hosts := scaleExecutor(b, n)
			loaded := heapMB() - base
			v := x.view()
			for _, name := range hosts {
				h, _ := v.inv.HostVars(name)
				if _, err := x.hostConn(v, h); err != nil {
					b.Fatal(err)
				}
			}
			resolved := heapMB() - base
			b.ResetTimer()
			cpu := cpuTime(b)
			for b.Loop() {
				resolveTargets(b, x, hosts)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/host")
			b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N*n), "cpu-µs/host")
			b.ReportMetric(loaded, "heap-MB")
			b.ReportMetric(resolved, "heap-resolved-MB")
			runtime.KeepAlive(x)
		})
	}
}
