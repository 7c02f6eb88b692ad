package prometheus_test

import (
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	exeprom "github.com/0ops/exed/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkJobObserved is what the metrics cost a job of one host: every
// Observer call a job makes, from submit to end. The counters of each
// operation, state and status are looked up once: no allocation.
func BenchmarkJobObserved(b *testing.B) {
	m := exeprom.New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.JobSubmitted(exe.OpExecute)
			m.JobStarted(exe.OpExecute)
			m.HostResult(exe.OpExecute, exe.HostChanged)
			m.JobEnded(exe.OpExecute, exe.JobDone)
			m.JobStopped(exe.OpExecute, 3*time.Millisecond)
		}
	})
}

// BenchmarkRequestObserved is what the metrics cost an HTTP request of a
// route and code seen before.
func BenchmarkRequestObserved(b *testing.B) {
	m := exeprom.New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("POST /execute", 201, 2*time.Millisecond)
		}
	})
}
