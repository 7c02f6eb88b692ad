package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/redistest"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testpki"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tokens of the metrics tests: full access, a scraper's, a reader's.
const (
	metricsAdmin   = "admin-0123456789abcdef"
	metricsScraper = "scraper-0123456789abcdef"
	metricsReader  = "reader-0123456789abcdef"
	metricsTokens  = metricsAdmin + "\n" + metricsScraper + " name=prometheus ops=metrics\n" + metricsReader + " name=dashboard ops=read\n"
)

// metrics is one scrape, parsed by Prometheus's own text parser.
type metrics map[string]*dto.MetricFamily

// scrapeMetrics GETs url with token and parses the exposition; it
// returns the status and, for a 200, the families.
func scrapeMetrics(t *testing.T, url, token string) (int, metrics) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	assert.Contains(t, res.Header.Get("Content-Type"), "text/plain; version=0.0.4")
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err, "the exposition parses")
	return res.StatusCode, mfs
}

// scraped is a scrape that must succeed.
func scraped(t *testing.T, url, token string) metrics {
	t.Helper()
	code, m := scrapeMetrics(t, url, token)
	require.Equal(t, http.StatusOK, code)
	return m
}

// get is the value of the series of name whose labels are exactly
// labels (name, value pairs sorted by name): a counter's or gauge's
// value, a histogram's sample count; 0 when the series is absent (a
// counter never incremented).
func (m metrics) get(name string, labels ...string) float64 {
	for _, s := range m[name].GetMetric() {
		if len(s.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i, l := range s.GetLabel() {
			if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.GetCounter().GetValue()
		case s.Gauge != nil:
			return s.GetGauge().GetValue()
		case s.Histogram != nil:
			return float64(s.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// authed is httpDo with a bearer token.
func authed(t *testing.T, token, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// waitMetrics scrapes until ok holds (bounded), and returns that scrape:
// a job's last line reaches its followers as its outcome is stored, and
// the worker that stored it reports it just after.
func waitMetrics(t *testing.T, url, token string, ok func(metrics) bool) metrics {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scraped(t, url, token)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics at %s did not reach the expected values in 20s", url)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's counters
	}
}

// The built server on a real sshd: /metrics parses, and its counters
// move by exactly the jobs, hosts and requests the test made; only a
// credential with the metrics permission reads it; the sshnative
// plugin's own metrics come through the plugin protocol, and its
// restart is counted.
func TestMetricsOfTheServer(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte(metricsTokens), 0o600))
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte(fmt.Sprintf(
		"[web]\nweb1 ansible_host=127.0.0.1 ansible_port=%d\nweb2 ansible_host=127.0.0.1 ansible_port=%d\n", s.Port, s.Port)), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
auth_token_file = %s
[runner]
shutdown_grace = 2s
[sshnative]
inventory = %s
known_hosts = %s
private_key_file = %s
remote_user = %s
use_agent = false
`, freePort(t), tokens, inv, s.KnownHosts, s.ClientKey, s.User))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	url := base + "/metrics"

	code, _ := scrapeMetrics(t, url, metricsReader)
	assert.Equal(t, http.StatusForbidden, code, "a reader may not read metrics")
	code, body := authed(t, metricsReader, "GET", url, "")
	assert.JSONEq(t, `{"message":"not allowed: reading metrics is not allowed (it takes the metrics permission)"}`, body)
	code, _ = scrapeMetrics(t, url, "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = authed(t, metricsScraper, "POST", base+"/execute", `{"targets":["web1"],"cmd":"true"}`)
	assert.Equal(t, http.StatusForbidden, code, "a scraper may not run anything")

	before := scraped(t, url, metricsScraper)
	const n = 5
	var jids []string
	for i := 0; i < n; i++ {
		code, body := authed(t, metricsAdmin, "POST", base+"/execute", `{"targets":["web1","web2"],"cmd":"echo hi"}`)
		require.Equal(t, http.StatusCreated, code, body)
		jids = append(jids, strings.Split(body, `"`)[3])
	}
	code, body = authed(t, metricsAdmin, "POST", base+"/execute", `{"targets":["web1"],"cmd":"exit 3"}`)
	require.Equal(t, http.StatusCreated, code, body)
	jids = append(jids, strings.Split(body, `"`)[3])
	for _, jid := range jids {
		code, body := authed(t, metricsAdmin, "GET", base+"/jobs/"+jid+"?follow=1", "")
		require.Equal(t, http.StatusOK, code, body)
	}
	code, body = authed(t, metricsAdmin, "GET", base+"/ping?target=web1&target=web2", "")
	require.Equal(t, http.StatusOK, code, body)

	delta := func(after metrics, name string, labels ...string) float64 {
		return after.get(name, labels...) - before.get(name, labels...)
	}
	after := waitMetrics(t, url, metricsScraper, func(m metrics) bool {
		return m.get("exed_jobs_finished_total", "operation", "execute", "state", "done")+
			m.get("exed_jobs_finished_total", "operation", "execute", "state", "failure") >= n+1 &&
			m.get("exed_jobs_running") == 0
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"exed_jobs_submitted_total", []string{"operation", "execute"}, n + 1},
		{"exed_jobs_finished_total", []string{"operation", "execute", "state", "done"}, n},
		{"exed_jobs_finished_total", []string{"operation", "execute", "state", "failure"}, 1},
		{"exed_job_duration_seconds", []string{"operation", "execute"}, n + 1},
		{"exed_host_results_total", []string{"operation", "execute", "status", "changed"}, 2 * n},
		{"exed_host_results_total", []string{"operation", "execute", "status", "failed"}, 1},
		{"exed_host_results_total", []string{"operation", "ping", "status", "ok"}, 2},
		{"exed_http_requests_total", []string{"code", "201", "route", "POST /execute"}, n + 1},
		{"exed_http_requests_total", []string{"code", "200", "route", "GET /jobs/{jid}"}, n + 1},
		{"exed_http_requests_total", []string{"code", "200", "route", "GET /ping"}, 1},
		{"exed_http_requests_total", []string{"code", "200", "route", "GET /metrics"}, 1}, // the scrape "before"
		{"exed_jobs_submitted_total", []string{"operation", "ping"}, 0},
	} {
		assert.Equal(t, c.want, delta(after, c.name, c.labels...), "%s %v", c.name, c.labels)
	}
	assert.Equal(t, 0.0, after.get("exed_jobs_running"))
	assert.Equal(t, 0.0, after.get("exed_http_follow_streams"))
	assert.Equal(t, 2.0, after.get("exed_http_requests_total", "code", "403", "route", "GET /metrics"), "the reader's two tries")
	assert.Equal(t, 1.0, after.get("exed_http_requests_total", "code", "401", "route", "GET /metrics"))
	assert.Contains(t, after, "go_goroutines", "the Go runtime's metrics")
	assert.Contains(t, after, "process_resident_memory_bytes", "the process's metrics")

	// The sshnative plugin's own: one connection per host, pooled.
	assert.Equal(t, 1.0, after.get("exed_plugin_up", "plugin", "sshnative"))
	assert.Equal(t, 0.0, after.get("exed_plugin_restarts_total", "plugin", "sshnative"))
	assert.Equal(t, 2.0, after.get("exed_ssh_dial_duration_seconds", "plugin", "sshnative", "result", "ok"))
	assert.Equal(t, 0.0, after.get("exed_ssh_dial_duration_seconds", "plugin", "sshnative", "result", "error"))
	assert.Equal(t, 2.0, after.get("exed_ssh_pool_connections", "plugin", "sshnative"))
	assert.Equal(t, "Time to set up an SSH connection to a host or jump host (connect, handshake, authentication), by result (ok, error).",
		after["exed_ssh_dial_duration_seconds"].GetHelp())

	// A killed plugin is started again: counted, and its pool is new.
	plugin := pluginPID(t, p.cmd.Process.Pid, "plugin executor sshnative")
	require.NoError(t, syscall.Kill(plugin, syscall.SIGKILL))
	restarted := waitMetrics(t, url, metricsScraper, func(m metrics) bool {
		return m.get("exed_plugin_restarts_total", "plugin", "sshnative") == 1 && m.get("exed_plugin_up", "plugin", "sshnative") == 1
	})
	assert.Equal(t, 0.0, restarted.get("exed_ssh_pool_connections", "plugin", "sshnative"))
	p.stop(t)
}

// exed worker serves its own metrics on [worker] metrics_address, with
// the [api] credentials: the jobs it ran are its own, the server's are
// those submitted to it.
func TestMetricsOfAWorker(t *testing.T) {
	redis := redistest.Start(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte(metricsTokens), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
auth_token_file = %s
[runner]
broker_url = %s
lease = 2s
shutdown_grace = 2s
[worker]
metrics_address = 127.0.0.1:0
`, freePort(t), tokens, redis.URL))
	api := start(t, dir, "-c", conf)
	base := "http://" + api.addr
	worker, rest := spawn(t, dir, "exed worker running:", "worker", "-c", conf)
	_, addr, found := strings.Cut(rest, "metrics=")
	require.True(t, found, rest)
	workerURL := "http://" + strings.Fields(addr)[0] + "/metrics"

	code, _ := scrapeMetrics(t, workerURL, metricsReader)
	assert.Equal(t, http.StatusForbidden, code)
	code, _ = scrapeMetrics(t, workerURL, "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body := authed(t, metricsAdmin, "GET", strings.TrimSuffix(workerURL, "/metrics")+"/jobs", "")
	assert.Equal(t, http.StatusNotFound, code, "a worker serves no API: %s", body)

	const n = 4
	var jids []string
	for i := 0; i < n; i++ {
		code, body := authed(t, metricsAdmin, "POST", base+"/execute", `{"targets":["localhost"],"cmd":"echo hi"}`)
		require.Equal(t, http.StatusCreated, code, body)
		jids = append(jids, strings.Split(body, `"`)[3])
	}
	for _, jid := range jids {
		code, body := authed(t, metricsAdmin, "GET", base+"/jobs/"+jid+"?follow=1", "")
		require.Equal(t, http.StatusOK, code, body)
	}
	w := waitMetrics(t, workerURL, metricsScraper, func(m metrics) bool {
		return m.get("exed_jobs_finished_total", "operation", "execute", "state", "done") >= n && m.get("exed_jobs_running") == 0
	})
	assert.Equal(t, float64(n), w.get("exed_jobs_finished_total", "operation", "execute", "state", "done"))
	assert.Equal(t, float64(n), w.get("exed_job_duration_seconds", "operation", "execute"))
	assert.Equal(t, float64(n), w.get("exed_host_results_total", "operation", "execute", "status", "changed"))
	assert.Equal(t, 0.0, w.get("exed_jobs_submitted_total", "operation", "execute"), "jobs are submitted to the server")
	assert.Equal(t, 1.0, w.get("exed_plugin_up", "plugin", "sshnative"))

	s := scraped(t, base+"/metrics", metricsScraper)
	assert.Equal(t, float64(n), s.get("exed_jobs_submitted_total", "operation", "execute"))
	assert.Equal(t, 0.0, s.get("exed_jobs_finished_total", "operation", "execute", "state", "done"), "the worker ran them")
	worker.stop(t)
	api.stop(t)

	// Off loopback without credentials, a worker refuses to start.
	open := writeConf(t, t.TempDir(), fmt.Sprintf("[runner]\nbroker_url = %s\n[worker]\nmetrics_address = 0.0.0.0:0\n", redis.URL))
	out, err := exec.Command(binary, "worker", "-c", open).CombinedOutput()
	assert.Equal(t, 2, exitCode(t, err))
	assert.Contains(t, string(out), "[worker] metrics_address 0.0.0.0:0 is not a loopback address")
	bad := writeConf(t, t.TempDir(), "[worker]\nmetrics_address = 9816\n")
	out, err = exec.Command(binary, "worker", "-c", bad).CombinedOutput()
	assert.Equal(t, 2, exitCode(t, err))
	assert.Contains(t, string(out), `[worker] metrics_address: "9816" is not host:port (e.g. 127.0.0.1:9816)`)
}

// The worker's metrics endpoint, like the API, refuses a client
// certificate on a connection already open once a reload of
// tls_client_ca drops its CA.
func TestWorkerMetricsClientCAReload(t *testing.T) {
	redis := redistest.Start(t)
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "CA1"), testpki.NewCA(t, "CA2")
	certPath, keyPath, caPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem")
	writeServerCert(t, ca1, certPath, keyPath)
	require.NoError(t, os.WriteFile(caPath, ca1.PEM(), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
tls_cert = %s
tls_key = %s
tls_client_ca = %s
[runner]
broker_url = %s
shutdown_grace = 2s
[worker]
metrics_address = 127.0.0.1:0
`, certPath, keyPath, caPath, redis.URL))
	worker, rest := spawn(t, dir, "exed worker running:", "worker", "-c", conf)
	_, addr, found := strings.Cut(rest, "metrics=")
	require.True(t, found, rest)
	url := "https://" + strings.Fields(addr)[0] + "/metrics"
	roots := testpki.Pool(ca1)
	client := func(ca *testpki.CA, cn string) *http.Client {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
			Certificates: []tls.Certificate{ca.Client(t, cn)}}}}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	scrape := func(c *http.Client) (int, string, bool) {
		t.Helper()
		return getOn(t, c, url)
	}
	scraper := client(ca1, "prometheus")
	code, _, _ := scrape(scraper)
	require.Equal(t, http.StatusOK, code)

	require.NoError(t, os.WriteFile(caPath, ca2.PEM(), 0o600))
	worker.sighup(t, "client CA changed")
	code, body, reused := scrape(scraper)
	assert.True(t, reused, "the connection opened under CA1")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.JSONEq(t, `{"message":"client certificate no longer verifies: the client CA reloaded does not sign it"}`, body)
	code, body, _ = scrape(client(ca2, "prometheus"))
	assert.Equal(t, http.StatusOK, code, "a certificate of CA2: %s", body)
	worker.stop(t)
}
