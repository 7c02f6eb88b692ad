// Package prometheus measures exed with Prometheus metrics
// (prometheus/client_golang): jobs, hosts, HTTP requests and follow
// streams, plugin processes, and the sshnative executor's SSH
// connections. The domain does not know of it: it implements the
// observer interfaces of exe (exe.Observer), transport/http
// (exehttp.Observer) and plugins/sshnative (sshnative.Observer), and
// gathers the plugins' own metrics through the plugin protocol.
//
// An embedder measures its Engine and API in three lines:
//
//	reg := prometheus.NewRegistry()                      // client_golang's
//	m := exeprom.New(reg)                                // this package
//	engine, _ := exe.NewEngine(exe.Config{..., Observer: m})
//	api := exehttp.New(engine, exehttp.Options{Observer: m, Metrics: exeprom.Handler(reg)})
//
// and, for each plugin process loader.Load started (Set.Started),
// m.AddPlugin(s.Name, s.Process).
//
// # Metrics
//
// Names follow Prometheus's conventions: the exed_ prefix, the unit in
// the name, _total for counters. Each process reports what it does (see
// exe.Observer): an `exed worker` reports the jobs it runs, the server
// the jobs submitted to it.
//
//	exed_jobs_submitted_total{operation}         counter: jobs stored and dispatched
//	exed_jobs_finished_total{operation,state}    counter: job outcomes stored here; state done or failure
//	exed_job_duration_seconds{operation}         histogram: how long a job ran here, from its worker taking it to its outcome stored
//	exed_jobs_running                            gauge: jobs running here
//	exed_host_results_total{operation,status}    counter: hosts' events; status ok, changed, skipped, failed, unreachable
//	exed_http_requests_total{route,code}         counter: requests answered, by ServeMux pattern and status code
//	exed_http_request_duration_seconds{route}    histogram: time to answer (a follow stream: its whole length)
//	exed_http_follow_streams                     gauge: follow streams open
//	exed_plugin_restarts_total{plugin}           counter: plugin processes started again after theirs ended
//	exed_plugin_up{plugin}                       gauge: 1 when the plugin answered this scrape's request for its metrics
//	exed_ssh_dial_duration_seconds{plugin,result} histogram: SSH connections set up; result ok or error
//	exed_ssh_pool_connections{plugin}            gauge: pooled SSH connections
//
// operation is the API's operation name (ping, facter, service, execute,
// deploy, task); route is a ServeMux pattern ("POST /execute", "GET
// /jobs/{jid}"), never a raw path, so that no label takes unbounded
// values. The exed_ssh_ metrics are the sshnative plugin's own (NewSSH),
// served by the server with the label plugin="sshnative".
package prometheus

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/0ops/exed/exe"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// JobDurationBuckets are the buckets of exed_job_duration_seconds, in
// seconds: from a ping on a few hosts to an hour-long rolling restart.
var JobDurationBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// operations are the values of the operation label, in the order of the
// counters cached for them.
var operations = [...]exe.Operate{exe.OpPing, exe.OpFacter, exe.OpService, exe.OpExecute, exe.OpDeploy, exe.OpTask}

// opIndex is op's place in operations, or -1.
func opIndex(op exe.Operate) int {
	switch op {
	case exe.OpPing:
		return 0
	case exe.OpFacter:
		return 1
	case exe.OpService:
		return 2
	case exe.OpExecute:
		return 3
	case exe.OpDeploy:
		return 4
	case exe.OpTask:
		return 5
	}
	return -1
}

// stateLabel is the state label of a job outcome.
func stateLabel(s exe.JobState) string {
	if s == exe.JobDone {
		return "done"
	}
	return "failure"
}

// statuses are the values of the status label, by exe.HostStatus.
var statuses = [...]string{exe.HostAnnounce: "announce", exe.HostOK: "ok", exe.HostSkipped: "skipped",
	exe.HostFailed: "failed", exe.HostUnreachable: "unreachable", exe.HostChanged: "changed"}

func statusLabel(s exe.HostStatus) string {
	if s >= 0 && int(s) < len(statuses) {
		return statuses[s]
	}
	return strconv.Itoa(int(s))
}

// opMetrics are the metrics of one operation, looked up once: observing
// a job costs no label lookup.
type opMetrics struct {
	submitted prom.Counter
	finished  [2]prom.Counter // done, failure
	duration  prom.Observer
	results   [len(statuses)]prom.Counter
}

// Metrics are exed's metrics on a registry. A *Metrics is the Observer of
// an Engine (exe.Config.Observer) and of an API (exehttp.Options.Observer);
// AddPlugin adds a plugin process's. It is safe for concurrent use.
type Metrics struct {
	reg prom.Registerer

	submitted *prom.CounterVec
	finished  *prom.CounterVec
	duration  *prom.HistogramVec
	running   prom.Gauge
	results   *prom.CounterVec
	ops       [len(operations)]opMetrics

	requests     *prom.CounterVec
	reqDurations *prom.HistogramVec
	follows      prom.Gauge
	mu           sync.RWMutex
	routes       map[string]*routeMetrics
	plugins      map[string]bool // names AddPlugin added
}

var _ exe.Observer = (*Metrics)(nil)

// routeMetrics are one route's metrics, looked up once per route and code.
type routeMetrics struct {
	duration prom.Observer
	codes    map[int]prom.Counter
}

// New registers exed's metrics on reg and returns them, for an Engine
// and an API to report to. It panics if reg already has them (as
// prometheus.MustRegister does): one Metrics per registry.
func New(reg prom.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		submitted: prom.NewCounterVec(prom.CounterOpts{Name: "exed_jobs_submitted_total",
			Help: "Jobs submitted: stored and dispatched, by operation."}, []string{"operation"}),
		finished: prom.NewCounterVec(prom.CounterOpts{Name: "exed_jobs_finished_total",
			Help: "Jobs whose outcome this process stored, by operation and state (done, failure)."}, []string{"operation", "state"}),
		duration: prom.NewHistogramVec(prom.HistogramOpts{Name: "exed_job_duration_seconds",
			Help:    "How long jobs ran in this process, from a worker taking one to its outcome stored, by operation.",
			Buckets: JobDurationBuckets}, []string{"operation"}),
		running: prom.NewGauge(prom.GaugeOpts{Name: "exed_jobs_running", Help: "Jobs running in this process."}),
		results: prom.NewCounterVec(prom.CounterOpts{Name: "exed_host_results_total",
			Help: "Hosts' events (results of an operation or of one of its steps on a host), by operation and status."},
			[]string{"operation", "status"}),
		requests: prom.NewCounterVec(prom.CounterOpts{Name: "exed_http_requests_total",
			Help: "HTTP requests answered, by route (the ServeMux pattern) and status code."}, []string{"route", "code"}),
		reqDurations: prom.NewHistogramVec(prom.HistogramOpts{Name: "exed_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests (for a follow stream, its whole length), by route.",
			Buckets: prom.DefBuckets}, []string{"route"}),
		follows: prom.NewGauge(prom.GaugeOpts{Name: "exed_http_follow_streams", Help: "Follow streams open."}),
		routes:  map[string]*routeMetrics{},
		plugins: map[string]bool{},
	}
	reg.MustRegister(m.submitted, m.finished, m.duration, m.running, m.results, m.requests, m.reqDurations, m.follows)
	for i, op := range operations {
		o := &m.ops[i]
		o.submitted = m.submitted.WithLabelValues(string(op))
		o.finished[0] = m.finished.WithLabelValues(string(op), "done")
		o.finished[1] = m.finished.WithLabelValues(string(op), "failure")
		o.duration = m.duration.WithLabelValues(string(op))
		for s := exe.HostOK; int(s) < len(statuses); s++ {
			o.results[s] = m.results.WithLabelValues(string(op), statuses[s])
		}
	}
	return m
}

// JobSubmitted implements exe.Observer.
func (m *Metrics) JobSubmitted(op exe.Operate) {
	if i := opIndex(op); i >= 0 {
		m.ops[i].submitted.Inc()
		return
	}
	m.submitted.WithLabelValues(string(op)).Inc()
}

// JobStarted implements exe.Observer.
func (m *Metrics) JobStarted(exe.Operate) { m.running.Inc() }

// JobStopped implements exe.Observer.
// The duration is observed before the running gauge goes down: a scrape
// that sees no job running sees every stopped job's duration too.
func (m *Metrics) JobStopped(op exe.Operate, ran time.Duration) {
	if i := opIndex(op); i >= 0 {
		m.ops[i].duration.Observe(ran.Seconds())
	} else {
		m.duration.WithLabelValues(string(op)).Observe(ran.Seconds())
	}
	m.running.Dec()
}

// JobEnded implements exe.Observer.
func (m *Metrics) JobEnded(op exe.Operate, state exe.JobState) {
	if i := opIndex(op); i >= 0 {
		if state == exe.JobDone {
			m.ops[i].finished[0].Inc()
		} else {
			m.ops[i].finished[1].Inc()
		}
		return
	}
	m.finished.WithLabelValues(string(op), stateLabel(state)).Inc()
}

// HostResult implements exe.Observer.
func (m *Metrics) HostResult(op exe.Operate, status exe.HostStatus) {
	if i := opIndex(op); i >= 0 && status >= exe.HostOK && int(status) < len(statuses) {
		m.ops[i].results[status].Inc()
		return
	}
	m.results.WithLabelValues(string(op), statusLabel(status)).Inc()
}

// Request implements exehttp.Observer.
func (m *Metrics) Request(route string, code int, d time.Duration) {
	m.mu.RLock()
	rm := m.routes[route]
	var c prom.Counter
	if rm != nil {
		c = rm.codes[code]
	}
	m.mu.RUnlock()
	if c == nil {
		rm, c = m.route(route, code)
	}
	c.Inc()
	rm.duration.Observe(d.Seconds())
}

// route returns the metrics of a route and code seen for the first time.
func (m *Metrics) route(route string, code int) (*routeMetrics, prom.Counter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := m.routes[route]
	if rm == nil {
		rm = &routeMetrics{duration: m.reqDurations.WithLabelValues(route), codes: map[int]prom.Counter{}}
		m.routes[route] = rm
	}
	c := rm.codes[code]
	if c == nil {
		c = m.requests.WithLabelValues(route, strconv.Itoa(code))
		rm.codes[code] = c
	}
	return rm, c
}

// FollowStreams implements exehttp.Observer.
func (m *Metrics) FollowStreams(delta int) { m.follows.Add(float64(delta)) }

// Handler serves what g gathers (a *prometheus.Registry) in the
// Prometheus exposition format, for exehttp.Options.Metrics. A collector
// that fails (a plugin that does not answer) leaves its metrics out and
// the rest is served, rather than the whole scrape failing.
func Handler(g prom.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
