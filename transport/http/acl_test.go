package http_test

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every route the API registers answers 401 without a token, but the
// public ones: /healthz and /openapi.json.
func TestEveryRouteAuthenticates(t *testing.T) {
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	defer eng.Shutdown(t.Context())
	api := exehttp.New(eng, exehttp.Options{Tokens: []string{"0123456789abcdef-token"}})
	ts := httptest.NewServer(openapitest.Handler(t, api, ""))
	defer ts.Close()
	var public []string
	for pattern, isPublic := range api.Patterns() {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.ReplaceAll(path, "{jid}", "00000000-0000-4000-8000-000000000000")
		req, err := http.NewRequest(method, ts.URL+path+"?target=localhost", strings.NewReader(`{"targets":["localhost"]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		res, err := ts.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		if isPublic {
			public = append(public, pattern)
			assert.NotEqual(t, http.StatusUnauthorized, res.StatusCode, "%s is public", pattern)
			continue
		}
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, pattern)
	}
	sort.Strings(public)
	assert.Equal(t, []string{"GET /healthz", "GET /openapi.json"}, public, "only /healthz and /openapi.json are public")
}
