package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/rollingrestart"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/require"
)

// server is exed's API for a real Engine (memory store, the sshnative
// executor on hosts with a local connection, the rollingrestart task)
// behind a real HTTP server.
type server struct {
	url    string // base URL, prefix included
	engine *exe.Engine
	api    *exehttp.API
	ts     *httptest.Server
	roles  string
}

type serverOpts struct {
	hosts       int // h1..hN, local connection; 0: 3
	concurrency int // sshnative's; 0: 1, so hosts finish in order
	api         exehttp.Options
	tls         bool // serve HTTPS (api.ClientCerts asks for client certificates)
	caPool      *certPool
}

func newServer(t *testing.T, o serverOpts) *server {
	t.Helper()
	if o.hosts == 0 {
		o.hosts = 3
	}
	if o.concurrency == 0 {
		o.concurrency = 1
	}
	var inv strings.Builder
	for i := 1; i <= o.hosts; i++ {
		fmt.Fprintf(&inv, "h%d ansible_connection=local\n", i)
	}
	parsed, err := inventory.Parse(strings.NewReader(inv.String()), "hosts")
	require.NoError(t, err)
	roles := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "web", "tags"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(roles, "web", "main.sh"), []byte("echo \"port $EXE_VAR_PORT\"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(roles, "web", "tags", "conf.sh"), []byte("echo conf; cat\n"), 0o644))
	x, err := sshnative.New(sshnative.Config{Inventory: parsed, Forks: o.concurrency, Roles: roles})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x,
		Tasks: map[string]exe.Task{"rollingrestart": rollingrestart.Task{}}})
	require.NoError(t, err)
	api := exehttp.New(eng, o.api)
	var ts *httptest.Server
	if o.tls {
		ts = httptest.NewUnstartedServer(api)
		ts.TLS = o.caPool.serverConfig(t, o.api.ClientCerts)
		ts.StartTLS()
	} else {
		ts = httptest.NewServer(api)
	}
	t.Cleanup(func() {
		ts.Close()
		_ = eng.Shutdown(context.Background())
	})
	return &server{url: ts.URL + o.api.Prefix, engine: eng, api: api, ts: ts, roles: roles}
}

// mounted serves the API under prefix on a mux of a service's own, as an
// embedder does (exehttp.API.Register).
func mounted(t *testing.T, prefix string) (*server, *httptest.Server) {
	t.Helper()
	s := newServer(t, serverOpts{api: exehttp.Options{Prefix: prefix}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "the service's page") })
	s.api.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return s, ts
}
