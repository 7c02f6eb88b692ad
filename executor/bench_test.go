package executor_test

import (
	"context"
	"testing"

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
func BenchmarkCallPlugin(b *testing.B) {
	c, err := executor.Start(context.Background(), executor.Options{Name: "testexec", Path: bins["testexec"]})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchPing(b, c)
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
