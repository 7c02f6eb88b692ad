package http

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every route of the table but the public ones answers 401 without a
// token, so a route added later cannot be served without authentication.
func TestEveryRouteAuthenticates(t *testing.T) {
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	defer eng.Shutdown(t.Context())
	api := New(eng, Options{Tokens: []string{"0123456789abcdef-token"}, Metrics: http.NotFoundHandler()})
	ts := httptest.NewServer(api)
	defer ts.Close()
	public := 0
	for _, rt := range api.routes() {
		path := strings.ReplaceAll(rt.path, "{jid}", "00000000-0000-4000-8000-000000000000")
		req, err := http.NewRequest(rt.method, ts.URL+path+"?target=localhost", strings.NewReader(`{"targets":["localhost"]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		res, err := ts.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		if rt.public {
			public++
			assert.NotEqual(t, http.StatusUnauthorized, res.StatusCode, "%s %s is public", rt.method, rt.path)
			continue
		}
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s %s", rt.method, rt.path)
	}
	assert.Equal(t, 1, public, "only /healthz is public")
}
