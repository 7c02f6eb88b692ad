package bench

import (
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	exeprom "github.com/0ops/exed/prometheus"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkAsyncPingMetrics is BenchmarkAsyncPing without metrics (off)
// and with them (on: package prometheus as the Engine's and the API's
// Observer, GET /metrics served), one after the other in one run, so
// that their difference is what measuring costs per job.
func BenchmarkAsyncPingMetrics(b *testing.B) {
	const clients = 32
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			var configure []func(*exe.Config, *exehttp.Options)
			if on {
				reg := prometheus.NewRegistry()
				m := exeprom.New(reg)
				configure = append(configure, func(c *exe.Config, o *exehttp.Options) {
					c.Observer, o.Observer, o.Metrics = m, m, exeprom.Handler(reg)
				})
			}
			s := newStackOn(b, clients, memory.New(memory.Options{MaxJobs: 1 << 22}), configure...)
			b.ReportAllocs()
			runJobs(b, clients, s.client, s.srv.URL, s.engine, `{"targets":["localhost"]}`)
		})
	}
}
