package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exeprom "github.com/0ops/exed/prometheus"
	exehttp "github.com/0ops/exed/transport/http"
)

// Tokens of the production stack: the one the clients use is scoped
// (operations, a host pattern), among others as a real file holds them.
const (
	costToken  = "bench-scoped-token-0123456789abcdef"
	costTokens = "%s name=ops ops=ping,execute hosts=local* jobs=all\n"
)

// newProductionStack is newStack with what a production server turns on:
// scoped tokens read from a file (package auth), an audit trail
// written to a file and Prometheus metrics of the engine, the API and SSH.
func newProductionStack(b *testing.B, conns int) *stack {
	b.Helper()
	dir := b.TempDir()
	var lines strings.Builder
	for i := range 50 {
		fmt.Fprintf(&lines, "sha256:%064x name=user%d ops=execute hosts=web%d* jobs=own\n", i, i, i)
	}
	fmt.Fprintf(&lines, costTokens, costToken)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(lines.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	creds, _, err := auth.NewKeeper(tokens)
	if err != nil {
		b.Fatal(err)
	}
	trail, err := os.Create(filepath.Join(dir, "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	reg := prom.NewRegistry()
	metrics := exeprom.New(reg)
	x, err := sshnative.New(sshnative.Config{Observer: exeprom.NewSSH(reg)})
	if err != nil {
		b.Fatal(err)
	}
	store := memory.New(memory.Options{MaxJobs: 1 << 22})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, Observer: metrics,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: runtime.NumCPU(), Queue: 1 << 16})})
	if err != nil {
		b.Fatal(err)
	}
	audit := exehttp.NewAudit(trail, nil)
	srv := httptest.NewServer(exehttp.New(eng, exehttp.Options{Credentials: creds, Audit: audit,
		Metrics: exeprom.Handler(reg), Observer: metrics}))
	b.Cleanup(func() {
		srv.Close()
		_ = eng.Shutdown(context.Background())
		audit.Close(context.Background())
		_ = trail.Close()
	})
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns}
	return &stack{srv: srv, engine: eng, store: store, client: &http.Client{Transport: bearer{costToken, tr}}}
}

// bearer adds a bearer token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (t bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(r)
}

// BenchmarkProductionCost is the cost of production options: async ping
// throughput (as BenchmarkAsyncPing, 32 clients) and the follow fan-out
// latency (as BenchmarkFollowers1000) with tokens, the audit trail and
// metrics off and on. bench/README.md compares them.
func BenchmarkProductionCost(b *testing.B) {
	for _, mode := range []struct {
		name string
		new  func(*testing.B, int) *stack
	}{{"off", newStack}, {"on", newProductionStack}} {
		b.Run(mode.name+"/submit", func(b *testing.B) {
			s := mode.new(b, 32)
			b.ReportAllocs()
			runJobs(b, 32, s.client, s.srv.URL, s.engine, `{"targets":["localhost"]}`)
		})
		b.Run(mode.name+"/follow1000", func(b *testing.B) {
			runFollowers(b, mode.new(b, 1000), nil)
		})
	}
}
