package http_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/0ops/exed/auth"
	exeprom "github.com/0ops/exed/prometheus"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Credentials of the metrics tests, one line each.
const metricsTokens = `full-0123456789abcdef
scraper-0123456789abcdef name=prometheus ops=metrics
reader-0123456789abcdef name=dashboard ops=read
runner-0123456789abcdef name=ci ops=execute
`

func credentials(t *testing.T, text string) *auth.Keeper {
	t.Helper()
	f, _, err := auth.Parse([]byte(text), "tokens")
	require.NoError(t, err)
	return auth.KeeperOf(f)
}

// call sends a request with a bearer token ("" for none) and a Host
// ("" for the server's own).
func call(t *testing.T, base, method, path, token, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if host != "" {
		req.Host = host
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// GET /metrics is protected like every endpoint: it takes the metrics
// permission, which only ops=metrics and full access give, and the Host
// and cross-site checks.
func TestMetricsEndpointPermission(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := exeprom.New(reg)
	s := newServer(t, serverOpts{api: exehttp.Options{Credentials: credentials(t, metricsTokens),
		Metrics: exeprom.Handler(reg), Observer: m}})
	for _, c := range []struct {
		token, host string
		code        int
		message     string
	}{
		{"full-0123456789abcdef", "", 200, ""},
		{"scraper-0123456789abcdef", "", 200, ""},
		{"reader-0123456789abcdef", "", 403, `{"message":"not allowed: reading metrics is not allowed (it takes the metrics permission)"}`},
		{"runner-0123456789abcdef", "", 403, `{"message":"not allowed: reading metrics is not allowed (it takes the metrics permission)"}`},
		{"", "", 401, `{"message":"missing or invalid bearer token"}`},
		{"wrong-0123456789abcdef", "", 401, `{"message":"missing or invalid bearer token"}`},
		{"scraper-0123456789abcdef", "rebound.example", 403, ""},
	} {
		code, body := call(t, s.URL, "GET", "/metrics", c.token, c.host)
		assert.Equal(t, c.code, code, "%+v: %s", c, body)
		if c.message != "" {
			assert.JSONEq(t, c.message, body, "%+v", c)
		}
		if code == 200 {
			assert.Contains(t, body, "# TYPE exed_jobs_submitted_total counter")
		}
	}
	// The scraper's token is for metrics only.
	code, _ := call(t, s.URL, "GET", "/jobs", "scraper-0123456789abcdef", "")
	assert.Equal(t, 403, code)
	code, _ = call(t, s.URL, "POST", "/metrics", "full-0123456789abcdef", "")
	assert.Equal(t, 405, code)
}

// Without Options.Metrics the endpoint, which the OpenAPI document lists,
// says there are none.
func TestNoMetricsEndpoint(t *testing.T) {
	s := newServer(t, serverOpts{})
	code, body := call(t, s.URL, "GET", "/metrics", "", "")
	assert.Equal(t, 404, code)
	assert.JSONEq(t, `{"message":"this server serves no metrics"}`, body)
}

// MetricsHandler serves /metrics alone, with the API's checks: for a
// process that serves no API.
func TestMetricsHandlerAlone(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := exeprom.New(reg)
	srv := httptest.NewServer(exehttp.MetricsHandler(exehttp.Options{Credentials: credentials(t, metricsTokens),
		Metrics: exeprom.Handler(reg), Observer: m}))
	defer srv.Close()
	code, body := call(t, srv.URL, "GET", "/metrics", "scraper-0123456789abcdef", "")
	assert.Equal(t, 200, code)
	assert.True(t, strings.HasPrefix(body, "# HELP "), body)
	code, _ = call(t, srv.URL, "GET", "/metrics", "reader-0123456789abcdef", "")
	assert.Equal(t, 403, code)
	code, _ = call(t, srv.URL, "GET", "/metrics", "", "")
	assert.Equal(t, 401, code)
	code, _ = call(t, srv.URL, "GET", "/metrics", "scraper-0123456789abcdef", "rebound.example")
	assert.Equal(t, 403, code)
	for _, path := range []string{"/jobs", "/healthz", "/ping?target=localhost"} {
		code, body = call(t, srv.URL, "GET", path, "full-0123456789abcdef", "")
		assert.Equal(t, 404, code, path)
		assert.JSONEq(t, `{"message":"no such endpoint: `+strings.Split(path, "?")[0]+`"}`, body, path)
	}
	// Its own requests are measured too.
	code, body = call(t, srv.URL, "GET", "/metrics", "scraper-0123456789abcdef", "")
	require.Equal(t, 200, code)
	assert.Contains(t, body, `exed_http_requests_total{code="403",route="GET /metrics"} 2`)
	assert.Contains(t, body, `exed_http_requests_total{code="401",route="GET /metrics"} 1`)
}
