package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/browsertest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/chromedp/chromedp"
)

// dashboardStack is the embedded default with hosts host0001..hostNNNN
// (local connections) and the dashboard, behind a loopback HTTP server.
func dashboardStack(b *testing.B, hosts int) (*httptest.Server, *exe.Engine) {
	b.Helper()
	inv, err := inventory.Parse(strings.NewReader(fmt.Sprintf("host[0001:%04d] ansible_connection=local\n", hosts)), "hosts.ini")
	if err != nil {
		b.Fatal(err)
	}
	x, err := sshnative.New(sshnative.Config{Inventory: inv})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{MaxJobs: 1 << 20}), Executor: x,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: runtime.NumCPU(), Queue: 1 << 16})})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(exehttp.New(eng, exehttp.Options{UI: true}))
	b.Cleanup(func() {
		srv.Close()
		_ = eng.Shutdown(context.Background())
	})
	return srv, eng
}

// waitJob waits until the job has ended.
func waitJob(b *testing.B, eng *exe.Engine, jid string) {
	b.Helper()
	if _, err := eng.Follow(context.Background(), jid, func(exe.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
}

// renderTimes loads url in a fresh page load b.N times and reports the
// User Timing mark the page sets once wait is true in the page, in
// milliseconds from navigation (median, p90, max), and, for scale, when
// the page's HTML was parsed (DOMContentLoaded, median). With since, the name
// of an earlier mark, it also reports the median from that mark to the
// last: the page's own work, without the page load.
func renderTimes(b *testing.B, br *browsertest.Browser, url, wait, mark, since string) {
	b.Helper()
	var total, own, loaded []float64
	b.ResetTimer()
	for b.Loop() {
		// about:blank between loads: each load is a whole navigation.
		br.Do(b, chromedp.Navigate("about:blank"), chromedp.Navigate(url))
		br.WaitFor(b, wait, "document.body.innerText.slice(0, 300)", 2*time.Minute)
		at := browsertest.Eval[float64](b, br, fmt.Sprintf(`performance.getEntriesByName(%q)[0].startTime`, mark))
		total = append(total, at)
		loaded = append(loaded, browsertest.Eval[float64](b, br, `performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd`))
		if since != "" {
			own = append(own, at-browsertest.Eval[float64](b, br, fmt.Sprintf(`performance.getEntriesByName(%q)[0].startTime`, since)))
		}
	}
	b.StopTimer()
	sort.Float64s(total)
	b.ReportMetric(total[len(total)/2], "ms-median")
	b.ReportMetric(total[(len(total)*9)/10], "ms-p90")
	b.ReportMetric(total[len(total)-1], "ms-max")
	sort.Float64s(loaded)
	b.ReportMetric(loaded[len(loaded)/2], "ms-median-DOMContentLoaded")
	if len(own) > 0 {
		sort.Float64s(own)
		b.ReportMetric(own[len(own)/2], "ms-median-from-"+strings.TrimPrefix(since, "exed:"))
	}
}

// BenchmarkDashboardJob1000Hosts is the job page of a finished execute
// job on 1,000 hosts in headless Chromium: from navigation (a whole page
// load: HTML, modules, the follow stream of 1,000 events as Server-Sent
// Events) to the frame in which every host's cell shows its final status
// (the page's "exed:job-rendered" mark); and from the stream's first
// message to that frame ("exed:job-stream"): reading, parsing and showing
// the 1,000 events.
func BenchmarkDashboardJob1000Hosts(b *testing.B) {
	srv, eng := dashboardStack(b, 1000)
	hosts := make([]string, 1000)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host%04d", i+1)
	}
	jid, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpExecute, Targets: hosts,
		Execute: exe.ExecuteArgs{Cmd: "echo ok"}})
	if err != nil {
		b.Fatal(err)
	}
	waitJob(b, eng, jid)
	br := browsertest.Start(b, 1280, 800)
	renderTimes(b, br, srv.URL+"/ui/#/jobs/"+jid,
		`document.getElementById('view-job').dataset.rendered === 'true' && document.querySelectorAll('#grid .cell[data-status=CHANGED]').length === 1000`,
		"exed:job-rendered", "exed:job-stream")
}

// BenchmarkDashboardJobList10000 is the job list with 10,000 jobs in the
// history: from navigation to the frame in which every row in view shows
// its job's details (the page's "exed:jobs-rendered" mark). The page
// fetches the list of IDs and the details of the rows in view only.
func BenchmarkDashboardJobList10000(b *testing.B) {
	srv, eng := dashboardStack(b, 1)
	var last string
	for range 10000 {
		jid, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"host0001"}})
		if err != nil {
			b.Fatal(err)
		}
		last = jid
	}
	waitJob(b, eng, last)
	br := browsertest.Start(b, 1280, 800)
	renderTimes(b, br, srv.URL+"/ui/",
		`document.getElementById('jobs').dataset.rendered === 'true' && document.getElementById('jobs').dataset.count === '10000'`,
		"exed:jobs-rendered", "")
	rows := browsertest.Eval[int](b, br, `document.querySelectorAll('#jobs .row').length`)
	b.ReportMetric(float64(rows), "rows-in-DOM")
}
