package executor_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/plugintest"
)

// benchPing is one call with one host and one event: the per-call cost.
func benchPing(b *testing.B, x exe.Executor) {
	ctx := context.Background()
	n := 0
	emit := func(exe.Event) { n++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := x.Ping(ctx, []string{"a"}, emit); err != nil {
			b.Fatal(err)
		}
	}
	if n != b.N {
		b.Fatalf("%d events for %d calls", n, b.N)
	}
}

// BenchmarkCallInProcess is the executor called directly.
func BenchmarkCallInProcess(b *testing.B) {
	benchPing(b, &plugintest.Executor{})
}

// BenchmarkCallPlugin is the same executor in a plugin process: the
// difference to BenchmarkCallInProcess is what the boundary adds per call.
// cpu-us/op is this process's CPU time per call (user and system, every
// thread), plugin-cpu-us/op the plugin process's: the machine may be
// shared, which wall time per call does not survive.
func BenchmarkCallPlugin(b *testing.B) {
	c := startBench(b)
	cpu := cpuPerOp(b, c.PID())
	benchPing(b, c)
	cpu()
}

// BenchmarkCallPluginParallel is BenchmarkCallPlugin from 16 goroutines
// at once, as the server's jobs call it.
func BenchmarkCallPluginParallel(b *testing.B) {
	c := startBench(b)
	cpu := cpuPerOp(b, c.PID())
	b.SetParallelism(8) // 16 goroutines on 2 CPUs
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		emit := func(exe.Event) {}
		for pb.Next() {
			if err := c.Ping(context.Background(), []string{"a"}, emit); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu()
}

func startBench(b *testing.B) *executor.Client {
	c, err := executor.Start(context.Background(), executor.Options{Name: "testexec", Path: bins["testexec"]})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// cpuPerOp starts counting the CPU time of this process and of process
// pid; the func it returns reports both per b.N.
func cpuPerOp(b *testing.B, pid int) func() {
	self0, plugin0 := selfCPU(), procCPU(b, pid)
	return func() {
		self, plugin := selfCPU()-self0, procCPU(b, pid)-plugin0
		b.ReportMetric(float64(self.Microseconds())/float64(b.N), "cpu-us/op")
		b.ReportMetric(float64(plugin.Microseconds())/float64(b.N), "plugin-cpu-us/op")
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user and system time of process pid, every thread, from
// /proc/PID/stat (in clock ticks of 10 ms: Linux's USER_HZ is 100).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which may hold spaces, in ().
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of proc(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkStreamEvents streams 10,000 events per call from the plugin
// (each with a small stdout, as execute results have) and reports them
// per second.
func BenchmarkStreamEvents(b *testing.B) {
	c, err := executor.Start(context.Background(), executor.Options{Name: "testexec", Path: bins["testexec"]})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const perCall = 10000
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Execute(context.Background(), []string{"a"}, exe.ExecuteArgs{Cmd: "stream 10000"}, func(exe.Event) { n++ }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n != perCall*b.N {
		b.Fatalf("%d events, want %d", n, perCall*b.N)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
