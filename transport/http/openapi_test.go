package http_test

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain runs the tests, then, when all of them ran, checks that the
// traffic they exchanged (each exchange checked against the OpenAPI
// document, openapitest.Handler) reached every success the document
// describes: every operation, and every format of its answers.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" {
		missing, err := openapitest.Uncovered()
		switch {
		case err != nil:
			fmt.Fprintln(os.Stderr, "openapitest:", err)
			code = 1
		case len(missing) > 0:
			fmt.Fprintf(os.Stderr, "FAIL: no test exchanged, with a checked server, these answers of the OpenAPI document:\n\t%s\n", strings.Join(missing, "\n\t"))
			code = 1
		}
	}
	os.Exit(code)
}

// specOperations lists the document's operations as mux patterns
// ("GET /jobs/{jid}"), each with whether it needs no credentials (an
// empty security list).
func specOperations(t *testing.T, prefix string) map[string]bool {
	t.Helper()
	doc, err := openapitest.Load()
	require.NoError(t, err)
	out := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			out[method+" "+prefix+path] = len(security) == 0
			if len(security) > 0 {
				assert.Equal(t, openapi3.SecurityRequirements{{"bearerAuth": {}}, {}}, security,
					"%s %s: a bearer token, or none when the server has no credentials", method, path)
			}
		}
	}
	return out
}

// The document and the mux agree: every pattern the API registers is an
// operation of the document and every operation is a registered pattern,
// with and without a prefix; the operations without security are exactly
// the routes that need no credentials.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x})
	require.NoError(t, err)
	defer eng.Shutdown(t.Context())
	for _, prefix := range []string{"", "/exe"} {
		registered := exehttp.New(eng, exehttp.Options{Prefix: prefix}).Patterns()
		assert.Equal(t, keys(specOperations(t, prefix)), keys(registered), "prefix %q: document operations and mux patterns", prefix)
		assert.Equal(t, specOperations(t, prefix), registered, "prefix %q: public routes", prefix)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Every operation of the document is routed to its handler: a request for
// it is not answered by the mux's fallbacks (404 "no such endpoint", 405).
func TestOpenAPIEveryOperationIsRouted(t *testing.T) {
	s := newServer(t, serverOpts{})
	for pattern := range specOperations(t, "") {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.ReplaceAll(path, "{jid}", "00000000-0000-4000-8000-000000000000")
		r := s.do(method, path, "application/json", "{}")
		assert.NotEqual(t, http.StatusMethodNotAllowed, r.status, pattern)
		assert.NotContains(t, string(r.body), "no such endpoint", pattern)
	}
}

// GET /openapi.json serves the document: the bytes of docs/openapi.json,
// without credentials even when the server has some.
func TestOpenAPIServed(t *testing.T) {
	s := newServer(t, serverOpts{api: exehttp.Options{Tokens: []string{"alpha"}}})
	s.token = ""
	res, err := s.Client().Get(s.URL + "/openapi.json")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	assert.Equal(t, exehttp.OpenAPI(), body)
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.json"))
	require.NoError(t, err)
	assert.True(t, string(docs) == string(body),
		"docs/openapi.json must be transport/http/openapi.json, byte for byte: cp transport/http/openapi.json docs/")
	assert.Equal(t, http.StatusUnauthorized, s.get("/target").status, "the other routes still need a token")
}
