package prometheus

import (
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
)

// SSH are the sshnative executor's metrics: it is the executor's
// Observer (sshnative.Config.Observer). The sshnative plugin keeps them
// on a registry of its own, which the server gathers through the plugin
// protocol and serves with the label plugin="sshnative" (AddPlugin).
type SSH struct {
	dialOK, dialError prom.Observer
	pooled            prom.Gauge
}

// NewSSH registers the SSH metrics on reg and returns them:
//
//	exed_ssh_dial_duration_seconds{result}  histogram: connections set up (TCP connect or jump host channel, handshake, authentication); result ok or error
//	exed_ssh_pool_connections               gauge: pooled connections, to hosts and jump hosts
//
// It panics if reg already has them.
func NewSSH(reg prom.Registerer) *SSH {
	dial := prom.NewHistogramVec(prom.HistogramOpts{Name: "exed_ssh_dial_duration_seconds",
		Help:    "Time to set up an SSH connection to a host or jump host (connect, handshake, authentication), by result (ok, error).",
		Buckets: prom.DefBuckets}, []string{"result"})
	pooled := prom.NewGauge(prom.GaugeOpts{Name: "exed_ssh_pool_connections",
		Help: "SSH connections pooled, to hosts and jump hosts."})
	reg.MustRegister(dial, pooled)
	return &SSH{dialOK: dial.WithLabelValues("ok"), dialError: dial.WithLabelValues("error"), pooled: pooled}
}

// Dialed implements sshnative.Observer.
func (s *SSH) Dialed(d time.Duration, err error) {
	if err != nil {
		s.dialError.Observe(d.Seconds())
		return
	}
	s.dialOK.Observe(d.Seconds())
}

// Pooled implements sshnative.Observer.
func (s *SSH) Pooled(delta int) { s.pooled.Add(float64(delta)) }
