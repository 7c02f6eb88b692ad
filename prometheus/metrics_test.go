package prometheus_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	exeprom "github.com/0ops/exed/prometheus"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bins are the plugin binaries TestMain builds.
var bins map[string]string

func TestMain(m *testing.M) {
	plugintest.Main(m, &bins, map[string]string{"testexec": "./internal/plugintest/testexec"})
}

var _ exehttp.Observer = (*exeprom.Metrics)(nil)

// families is what a registry gathers, by name.
type families map[string]*dto.MetricFamily

func gather(t *testing.T, g prometheus.Gatherer) families {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := families{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// scrape reads and parses an exposition as Prometheus does.
func scrape(t *testing.T, r io.Reader) families {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	require.NoError(t, err)
	return mfs
}

// value is the value of the metric of family name whose labels are
// exactly labels (name, value pairs): a counter's or gauge's value, a
// histogram's sample count; -1 when there is none.
func (f families) value(name string, labels ...string) float64 {
	mf := f[name]
	if mf == nil {
		return -1
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i, l := range m.GetLabel() {
			// Labels come sorted by name; so must the arguments.
			if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}

// labelValues lists the values label takes in family name.
func (f families) labelValues(name, label string) []string {
	set := map[string]bool{}
	for _, m := range f[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				set[l.GetValue()] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// engineWith is an Engine on the test executor (hosts a, b, c) whose
// jobs run one at a time here, reporting to m.
func engineWith(t *testing.T, m *exeprom.Metrics) *exe.Engine {
	t.Helper()
	engine, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: &plugintest.Executor{},
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: 1}), Observer: m})
	require.NoError(t, err)
	t.Cleanup(func() { _ = engine.Shutdown(context.Background()) })
	return engine
}

func execute(cmd string, hosts ...string) exe.Request {
	return exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: cmd}}
}

// Every job is submitted once and ends once, whoever ends it: its
// Runner, or the cancel of a job still queued; each host event counts
// once, sync ones included.
func TestJobsAndHosts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := exeprom.New(reg)
	engine := engineWith(t, m)
	ctx := context.Background()

	// The one worker runs a job that waits for its cancel; a second job
	// waits in the queue.
	blocked, err := engine.Submit(ctx, execute("block", "a"))
	require.NoError(t, err)
	started := make(chan struct{})
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		once := false
		_, _ = engine.Follow(ctx, blocked, func(exe.Event) error {
			if !once {
				once = true
				close(started)
			}
			return nil
		})
	}()
	<-started
	assert.Equal(t, 1.0, gather(t, reg).value("exed_jobs_running"), "the blocked job runs")
	queued, err := engine.Submit(ctx, execute("echo", "b"))
	require.NoError(t, err)
	job, err := engine.Cancel(ctx, queued)
	require.NoError(t, err)
	assert.Equal(t, "cancelled", job.Error)
	_, err = engine.Cancel(ctx, blocked)
	require.NoError(t, err)
	<-followed

	var jids []string
	for _, req := range []exe.Request{execute("echo", "a", "b"), execute("echo", "a", "b"), execute("echo", "a", "b"),
		execute("fail", "a", "b", "c"),
		{Operate: exe.OpPing, Targets: []string{"a", "b", "c"}}, {Operate: exe.OpPing, Targets: []string{"a", "b", "c"}}} {
		jid, err := engine.Submit(ctx, req)
		require.NoError(t, err)
		jids = append(jids, jid)
	}
	for _, jid := range jids {
		_, err := engine.Follow(ctx, jid, func(exe.Event) error { return nil })
		require.NoError(t, err)
	}
	out, err := engine.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a", "b"}})
	require.NoError(t, err)
	require.Len(t, out, 2)
	// Shutdown returns once every Runner has: all they report is in.
	require.NoError(t, engine.Shutdown(ctx))

	f := gather(t, reg)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"exed_jobs_submitted_total", []string{"operation", "execute"}, 6},
		{"exed_jobs_submitted_total", []string{"operation", "ping"}, 2},
		{"exed_jobs_submitted_total", []string{"operation", "deploy"}, 0},
		{"exed_jobs_finished_total", []string{"operation", "execute", "state", "done"}, 3},
		// The blocked job, the queued one (ended by its cancel), the failed one.
		{"exed_jobs_finished_total", []string{"operation", "execute", "state", "failure"}, 3},
		{"exed_jobs_finished_total", []string{"operation", "ping", "state", "done"}, 2},
		{"exed_jobs_finished_total", []string{"operation", "ping", "state", "failure"}, 0},
		{"exed_jobs_running", nil, 0},
		// The queued job never ran.
		{"exed_job_duration_seconds", []string{"operation", "execute"}, 5},
		{"exed_job_duration_seconds", []string{"operation", "ping"}, 2},
		// "started", then 3 jobs on a and b.
		{"exed_host_results_total", []string{"operation", "execute", "status", "changed"}, 7},
		// "stopped" by the cancel, and a, b, c of the failed operation.
		{"exed_host_results_total", []string{"operation", "execute", "status", "failed"}, 4},
		// b, cancelled before it started.
		{"exed_host_results_total", []string{"operation", "execute", "status", "skipped"}, 1},
		// 2 jobs on 3 hosts and a sync ping on 2.
		{"exed_host_results_total", []string{"operation", "ping", "status", "ok"}, 8},
	} {
		assert.Equal(t, c.want, f.value(c.name, c.labels...), "%s %v", c.name, c.labels)
	}
}

// Requests are counted by the pattern that served them, never by their
// path; requests refused before their handler by the route they asked
// for; follow streams while they are open.
func TestHTTPRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := exeprom.New(reg)
	engine := engineWith(t, m)
	const token = "metrics-test-token-0123456789"
	srv := httptest.NewServer(exehttp.New(engine, exehttp.Options{Tokens: []string{token},
		Metrics: exeprom.Handler(reg), Observer: m}))
	defer srv.Close()
	do := func(method, path, host, body string, auth bool) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if host != "" {
			req.Host = host
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return res
	}
	call := func(method, path, host, body string, auth bool) int {
		t.Helper()
		res := do(method, path, host, body, auth)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, 404, call("GET", "/jobs/no-such-job-1", "", "", true))
	assert.Equal(t, 404, call("GET", "/jobs/no-such-job-2", "", "", true))
	assert.Equal(t, 404, call("GET", "/no/such/path", "", "", true))
	assert.Equal(t, 405, call("DELETE", "/ping", "", "", true))
	assert.Equal(t, 403, call("GET", "/target", "rebound.example", "", true))
	assert.Equal(t, 401, call("GET", "/target", "", "", false))
	assert.Equal(t, 200, call("GET", "/target", "", "", true))
	assert.Equal(t, 201, call("POST", "/execute", "", `{"targets":["a"],"cmd":"block"}`, true))

	// A follow stream is open while its job runs.
	code, body := 0, ""
	func() {
		jobs := do("GET", "/jobs", "", "", true)
		defer jobs.Body.Close()
		b, _ := io.ReadAll(jobs.Body)
		code, body = jobs.StatusCode, strings.Trim(string(b), "[]\"\n")
	}()
	require.Equal(t, 200, code)
	res := do("GET", "/jobs/"+body+"?follow=1", "", "", true)
	lines := bufio.NewScanner(res.Body)
	require.True(t, lines.Scan(), "the job's first line")
	assert.Equal(t, 1.0, gather(t, reg).value("exed_http_follow_streams"))
	assert.Equal(t, 202, call("POST", "/jobs/"+body+"/cancel", "", "", true))
	for lines.Scan() {
	}
	res.Body.Close()
	// The stream's end is sent once the handler has returned: what it
	// reports is in.
	f := gather(t, reg)
	assert.Equal(t, 0.0, f.value("exed_http_follow_streams"))

	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"GET /jobs/{jid}", "404", 2},
		{"GET /jobs/{jid}", "200", 1}, // the follow
		{"/", "404", 1},
		{"/ping", "405", 1},
		{"GET /target", "403", 1},
		{"GET /target", "401", 1},
		{"GET /target", "200", 1},
		{"POST /execute", "201", 1},
		{"POST /jobs/{jid}/cancel", "202", 1},
		{"GET /jobs", "200", 1},
	} {
		assert.Equal(t, c.want, f.value("exed_http_requests_total", "code", c.code, "route", c.route), "%s %s", c.route, c.code)
	}
	assert.Equal(t, []string{"/", "/ping", "GET /jobs", "GET /jobs/{jid}", "GET /target", "POST /execute", "POST /jobs/{jid}/cancel"},
		f.labelValues("exed_http_requests_total", "route"), "patterns only, never a raw path")
	assert.Equal(t, 3.0, f.value("exed_http_request_duration_seconds", "route", "GET /jobs/{jid}"), "two 404s and the follow")

	// The scrape itself, as Prometheus reads it: the request of the
	// scrape before is in.
	scraped := func() families {
		res := do("GET", "/metrics", "", "", true)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
		return scrape(t, res.Body)
	}
	scraped()
	assert.Equal(t, 1.0, scraped().value("exed_http_requests_total", "code", "200", "route", "GET /metrics"))
}

// A plugin process's own metrics are served with the label plugin=NAME,
// beside its restarts and whether it answered; a plugin built before
// plugins had metrics is up and has none.
func TestPluginMetrics(t *testing.T) {
	ctx := context.Background()
	start := func(env ...string) *executor.Client {
		c, err := executor.Start(ctx, executor.Options{Name: "testexec", Path: bins["testexec"], Env: env})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	current, old := start(), start("EXE_TESTPLUGIN_OLD=1")
	reg := prometheus.NewRegistry()
	m := exeprom.New(reg)
	require.NoError(t, m.AddPlugin("testexec", current))
	require.NoError(t, m.AddPlugin("old", old))
	assert.ErrorContains(t, m.AddPlugin("testexec", current), `plugin "testexec" is added already`)

	for i := 0; i < 2; i++ {
		require.NoError(t, current.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "echo"}, func(exe.Event) {}))
	}
	require.NoError(t, old.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "echo"}, func(exe.Event) {}))
	rec := httptest.NewRecorder()
	exeprom.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, rec.Code)
	f := scrape(t, rec.Body)
	assert.Equal(t, 2.0, f.value("testexec_calls_total", "operation", "execute", "plugin", "testexec"))
	assert.Len(t, f["testexec_calls_total"].GetMetric(), 1, "the old plugin has none")
	assert.Equal(t, "Operations testexec was called for.", f["testexec_calls_total"].GetHelp())
	for _, name := range []string{"testexec", "old"} {
		assert.Equal(t, 1.0, f.value("exed_plugin_up", "plugin", name), name)
		assert.Equal(t, 0.0, f.value("exed_plugin_restarts_total", "plugin", name), name)
	}

	pid := current.PID()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { p := current.PID(); return p != 0 && p != pid }, 10*time.Second, 10*time.Millisecond)
	f = gather(t, reg)
	assert.Equal(t, 1.0, f.value("exed_plugin_restarts_total", "plugin", "testexec"))
	assert.Equal(t, 0.0, f.value("exed_plugin_restarts_total", "plugin", "old"))
	assert.Equal(t, -1.0, f.value("testexec_calls_total", "operation", "execute", "plugin", "testexec"),
		"the new process has not been called")

	// A plugin that does not answer is down; the rest is still served.
	require.NoError(t, current.Close())
	f = gather(t, reg)
	assert.Equal(t, 0.0, f.value("exed_plugin_up", "plugin", "testexec"))
	assert.Equal(t, 1.0, f.value("exed_plugin_up", "plugin", "old"))
}
