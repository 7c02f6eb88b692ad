package prometheus_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exeprom "github.com/0ops/exed/prometheus"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/prometheus/client_golang/prometheus"
)

// An Engine and its API measured on a registry of one's own, and served
// on GET /metrics: New, then the Metrics as both Observers.
func Example() {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := exeprom.New(reg)
	executor, _ := sshnative.New(sshnative.Config{}) // localhost, run locally
	engine, _ := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: executor, Observer: m})
	srv := httptest.NewServer(exehttp.New(engine, exehttp.Options{Observer: m, Metrics: exeprom.Handler(reg)}))
	defer srv.Close()

	res, err := http.Post(srv.URL+"/execute", "application/json", strings.NewReader(`{"targets":["localhost"],"cmd":"true"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	res.Body.Close()
	jids, _ := engine.Jobs(ctx)
	_, _ = engine.Follow(ctx, jids[0], func(exe.Event) error { return nil })
	_ = engine.Shutdown(ctx) // returns once the job's Runner has: all it reports is in

	res, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() { // the counters that moved, and histograms' counts
		l := lines.Text()
		if strings.HasPrefix(l, "exed_") && !strings.HasSuffix(l, " 0") && !strings.Contains(l, "_bucket") && !strings.Contains(l, "_sum") {
			fmt.Println(l)
		}
	}
	// Output:
	// exed_host_results_total{operation="execute",status="changed"} 1
	// exed_http_request_duration_seconds_count{route="POST /execute"} 1
	// exed_http_requests_total{code="201",route="POST /execute"} 1
	// exed_job_duration_seconds_count{operation="execute"} 1
	// exed_jobs_finished_total{operation="execute",state="done"} 1
	// exed_jobs_submitted_total{operation="execute"} 1
}
