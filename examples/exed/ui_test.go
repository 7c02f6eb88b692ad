package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/internal/browsertest"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cutProxy forwards TCP connections to a server, and cuts them all on
// demand: Cut closes every connection and refuses new ones until
// Restore, as a network that drops and comes back does.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		wg.Wait()
	})
	return p
}

func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		c.Close()
		return
	}
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
	c.Close()
	u.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones until Restore.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// newHoldProxy is an HTTP proxy to target that passes on the first
// message of each follow stream, then holds the rest of the stream until
// release is closed: a connection that stalls after the stream began.
func newHoldProxy(t *testing.T, target string, release <-chan struct{}) string {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.FlushInterval = -1
	rp.ModifyResponse = func(res *http.Response) error {
		if res.Request.URL.Query().Get("follow") != "" {
			res.Body = &holdBody{r: bufio.NewReader(res.Body), c: res.Body, release: release}
		}
		return nil
	}
	ts := httptest.NewServer(rp)
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// holdBody reads up to the end of the first message (a blank line), then
// waits for release before it reads on.
type holdBody struct {
	r       *bufio.Reader
	c       io.Closer
	release <-chan struct{}
	passed  bool
	prev    byte
}

func (h *holdBody) Read(p []byte) (int, error) {
	if h.passed {
		<-h.release
		return h.r.Read(p)
	}
	n := 0
	for n < len(p) {
		c, err := h.r.ReadByte()
		if err != nil {
			return n, err
		}
		p[n] = c
		n++
		if c == '\n' && h.prev == '\n' {
			h.passed = true
			break
		}
		h.prev = c
	}
	return n, nil
}

func (h *holdBody) Close() error { return h.c.Close() }

// ticketCmd is a command that takes the first free ticket number i in
// dir (mkdir is atomic), waits (at most a minute) for the file dir/g<i>,
// then prints "ticket <i>": a test decides when, and in which order, the
// hosts of a job finish by opening gates 0, 1, ...
func ticketCmd(dir string) string {
	return fmt.Sprintf(`d=%s; i=0; while ! mkdir "$d/t$i" 2>/dev/null; do i=$((i+1)); done; n=0; `+
		`while [ ! -e "$d/g$i" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; echo "ticket $i"`, dir)
}

func openGates(t *testing.T, dir string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("g%d", i)), nil, 0o600))
	}
}

// tickets counts the tickets taken in dir: the hosts that started.
func tickets(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "t") {
			n++
		}
	}
	return n
}

// dashboardServer is exed with a token, six hosts web1..web6 and 40
// hosts app01..app40 with local connections, two hosts no one answers
// for (db1, db2: SSH to a port nothing listens on), two hosts at a time.
type dashboardServer struct {
	*proc
	token string
	dir   string
}

func startDashboardServer(t *testing.T) *dashboardServer {
	t.Helper()
	dir := t.TempDir()
	s := &dashboardServer{dir: dir, token: "dashboard-token-5d41402abc4b2a76"}
	var inv strings.Builder
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&inv, "web%d ansible_connection=local\n", i)
	}
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&inv, "app%02d ansible_connection=local\n", i)
	}
	closed := freePort(t)
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(&inv, "db%d ansible_host=127.0.0.1 ansible_port=%d\n", i, closed)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hosts.ini"), []byte(inv.String()), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600))
	// deploy-build VERSION, on the server's PATH: the i-th host to start
	// it "deploys", and every seventh fails its health check.
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.Mkdir(bin, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "deploys"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "deploy-build"), []byte(fmt.Sprintf(`#!/bin/sh
d=%s; i=0; while ! mkdir "$d/t$i" 2>/dev/null; do i=$((i+1)); done
echo "fetching build $1"; echo "build $1 deployed"
[ $((i %% 7)) -ne 3 ] || { echo "health check failed: /healthz answered 503" >&2; exit 1; }
`, filepath.Join(dir, "deploys"))), 0o755))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokens"), []byte(s.token+" name=alice\n"), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
auth_token_file = %s
[runner]
concurrency = 2
shutdown_grace = 2s
[sshnative]
inventory = %s
known_hosts = %s
`, freePort(t), filepath.Join(dir, "tokens"), filepath.Join(dir, "hosts.ini"), filepath.Join(dir, "known_hosts")))
	s.proc = start(t, dir, "-c", conf)
	return s
}

// api calls the server directly (not through the page's proxy).
func (s *dashboardServer) api(t *testing.T, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Less(t, res.StatusCode, 300, "%s %s: %s", method, path, b)
	return b
}

// outputs is the job's events by host, as the server stored them.
func (s *dashboardServer) outputs(t *testing.T, jid string) map[string][]map[string]any {
	t.Helper()
	var job struct {
		ReturnData map[string][]map[string]any `json:"return_data"`
	}
	require.NoError(t, json.Unmarshal(s.api(t, "GET", "/jobs/"+jid+"?outputs=1", ""), &job))
	return job.ReturnData
}

func countEvents(out map[string][]map[string]any) int {
	n := 0
	for _, evs := range out {
		n += len(evs)
	}
	return n
}

// page is the dashboard in a browser, with helpers that read what it
// shows.
type page struct {
	*browsertest.Browser
	t *testing.T
}

// cells are the hosts of the job page's grid, in order, each with its
// status and how many events the page applied to it.
type cell struct {
	Host, Status, Events string
}

func (p *page) cells() []cell {
	return browsertest.Eval[[]cell](p.t, p.Browser, `[...document.querySelectorAll('#grid .cell')].map(c => ({Host: c.dataset.host, Status: c.dataset.status, Events: c.dataset.events}))`)
}

func (p *page) count(status string) string {
	return fmt.Sprintf(`document.querySelectorAll('#grid .cell[data-status=%s]').length`, status)
}

const showCells = `[...document.querySelectorAll('#grid .cell')].map(c => c.dataset.host + '=' + c.dataset.status).join(' ') + ' | ' + document.getElementById('view-job').dataset.state + ' | ' + document.getElementById('conn').textContent`

// run fills in the run form as a person does and submits it; it returns
// the new job's ID once the page shows the job.
func (p *page) run(op, pattern, cmd string) string {
	t := p.t
	browsertest.Eval[string](t, p.Browser, `location.hash = '#/'`)
	p.WaitFor(t, `!document.getElementById('view-jobs').hidden`, "", 30*time.Second)
	browsertest.Eval[bool](t, p.Browser, fmt.Sprintf(`(() => { const s = document.querySelector('#run select[name=op]'); s.value = %q; s.dispatchEvent(new Event('change')); return true })()`, op))
	browsertest.Eval[bool](t, p.Browser, `(() => { for (const i of document.querySelectorAll('#run input')) i.value = ''; return true })()`)
	p.Do(t, chromedp.SendKeys(chromedp.CSS("#run input[name=pattern]"), pattern))
	if cmd != "" {
		p.Do(t, chromedp.SendKeys(chromedp.CSS("#run input[name=cmd]"), cmd))
	}
	p.Do(t, chromedp.Click(chromedp.CSS("#run button[type=submit]")))
	p.WaitFor(t, `location.hash.startsWith('#/jobs/') && document.querySelectorAll('#grid .cell').length > 0`,
		`document.getElementById('run-match').value`, 30*time.Second)
	hash := browsertest.Eval[string](t, p.Browser, `location.hash`)
	return strings.TrimPrefix(hash, "#/jobs/")
}

// The dashboard, in a real Chromium, against the built server through a
// proxy that can cut the connection: it asks for the token; runs execute
// on a pattern from its form; shows each host's cell reach its final
// status without reload, while the connection is cut mid-job and comes
// back (the page resumes with Last-Event-ID: every host once, no event
// missed or applied twice); shows a host's output; cancels a running job;
// and lists the jobs, updating live. The page raises no script error and
// no Content Security Policy violation, and never puts the token in a URL.
func TestDashboard(t *testing.T) {
	browsertest.Path(t)
	s := startDashboardServer(t)
	proxy := newCutProxy(t, s.addr)
	b := browsertest.Start(t, 1280, 800)
	p := &page{Browser: b, t: t}
	ui := "http://" + proxy.Addr() + "/ui/"

	t.Run("token", func(t *testing.T) {
		p.t = t
		p.Do(t, chromedp.Navigate(ui))
		p.WaitFor(t, `document.getElementById('login').open`, `document.body.innerText`, 30*time.Second)
		p.Do(t, chromedp.SendKeys(chromedp.CSS("#login input[name=token]"), "not-the-token"), chromedp.Click(chromedp.CSS("#login button[type=submit]")))
		p.WaitFor(t, `document.getElementById('login').open && document.getElementById('login-error').textContent.includes('refused')`,
			`document.getElementById('login-error').textContent`, 30*time.Second)
		p.Do(t, chromedp.SendKeys(chromedp.CSS("#login input[name=token]"), s.token), chromedp.Click(chromedp.CSS("#login button[type=submit]")))
		p.WaitFor(t, `!document.getElementById('login').open && document.getElementById('jobs').dataset.count === '0'`,
			`document.getElementById('login-error').textContent`, 30*time.Second)
		assert.Equal(t, s.token, browsertest.Eval[string](t, b, `sessionStorage.getItem('exed.token')`), "kept in the tab's session storage")
	})

	t.Run("resume after a cut", func(t *testing.T) {
		p.t = t
		gates := t.TempDir()
		jid := p.run("execute", "web*", ticketCmd(gates))
		hosts := []string{"web1", "web2", "web3", "web4", "web5", "web6"}
		p.WaitFor(t, `document.querySelectorAll('#grid .cell[data-status=PENDING]').length === 6`, showCells, 30*time.Second)

		openGates(t, gates, 0, 2)
		p.WaitFor(t, p.count("CHANGED")+` === 2`, showCells, time.Minute)
		proxy.Cut()
		openGates(t, gates, 2, 4)
		require.Eventually(t, func() bool { return countEvents(s.outputs(t, jid)) == 4 }, time.Minute, 20*time.Millisecond,
			"hosts 3 and 4 end while the page is cut off")
		proxy.Restore()
		p.WaitFor(t, p.count("CHANGED")+` === 4`, showCells, time.Minute)
		openGates(t, gates, 4, 6)
		p.WaitFor(t, `document.getElementById('view-job').dataset.rendered === 'true'`, showCells, time.Minute)

		cells := p.cells()
		var shown []string
		for _, c := range cells {
			shown = append(shown, c.Host)
			assert.Equal(t, "CHANGED", c.Status, c.Host)
			assert.Equal(t, "1", c.Events, "%s: one event, applied once", c.Host)
		}
		assert.Equal(t, hosts, shown, "every host exactly once")
		view := browsertest.Eval[map[string]string](t, b, `({...document.getElementById('view-job').dataset})`)
		assert.Equal(t, "Done", view["state"])
		assert.Equal(t, "0", view["duplicates"], "no event received twice")
		assert.NotEqual(t, "0", view["reconnects"], "the page reconnected")

		// The page followed again after event 2, with Last-Event-ID.
		var resumes []string
		for _, r := range b.Requests() {
			if strings.Contains(r.URL, "/jobs/"+jid+"?follow=1") {
				resumes = append(resumes, r.Headers["last-event-id"])
				assert.Equal(t, "text/event-stream", r.Headers["accept"])
			}
		}
		require.GreaterOrEqual(t, len(resumes), 2, "followed, then followed again")
		assert.Equal(t, "", resumes[0], "the first follow starts at the first event")
		assert.Contains(t, resumes[1:], "2", "a follow resumed after the 2 events received before the cut")

		// A host's output, on click, is what the server stored.
		out := s.outputs(t, jid)
		p.Do(t, chromedp.Click(chromedp.CSS(`#grid .cell[data-host=web3]`)))
		p.WaitFor(t, `document.querySelector('#output-events pre.stdout') !== null`, `document.getElementById('output').innerText`, 10*time.Second)
		stdout := browsertest.Eval[string](t, b, `document.querySelector('#output-events pre.stdout').textContent`)
		require.Len(t, out["web3"], 1)
		assert.Equal(t, out["web3"][0]["stdout"], stdout)
		assert.Regexp(t, regexp.MustCompile(`^ticket [0-5]\n$`), stdout)
		b.Screenshot(t, "job-resumed")
	})

	t.Run("cancel", func(t *testing.T) {
		p.t = t
		gates := t.TempDir() // never opened
		jid := p.run("execute", "web*", ticketCmd(gates))
		require.Eventually(t, func() bool { return tickets(t, gates) == 2 }, time.Minute, 20*time.Millisecond, "two hosts at a time start")
		p.WaitFor(t, `!document.getElementById('cancel').hidden`, showCells, 30*time.Second)
		p.Do(t, chromedp.Click(chromedp.ID("cancel")))
		p.WaitFor(t, `document.getElementById('cancel').dataset.armed === 'true'`, "", 10*time.Second)
		p.Do(t, chromedp.Click(chromedp.ID("cancel")))
		p.WaitFor(t, `document.getElementById('view-job').dataset.rendered === 'true'`, showCells, time.Minute)
		byStatus := map[string]int{}
		for _, c := range p.cells() {
			byStatus[c.Status]++
			assert.Equal(t, "1", c.Events, c.Host)
		}
		assert.Equal(t, map[string]int{"FAILED": 2, "SKIPPED": 4}, byStatus, "two interrupted, four never started")
		assert.Equal(t, "Failure", browsertest.Eval[string](t, b, `document.getElementById('view-job').dataset.state`))
		assert.Equal(t, "cancelled", browsertest.Eval[string](t, b, `document.getElementById('job-error').textContent`))
		assert.True(t, browsertest.Eval[bool](t, b, `document.getElementById('cancel').hidden`), "no cancel button once the job ended")
		var job map[string]any
		require.NoError(t, json.Unmarshal(s.api(t, "GET", "/jobs/"+jid, ""), &job))
		assert.EqualValues(t, 2, job["state"])
		b.Screenshot(t, "job-cancelled")
	})

	t.Run("fleet", func(t *testing.T) {
		p.t = t
		// Every seventh host fails; db1 and db2 cannot be reached.
		jid := p.run("execute", "app*:db*", "deploy-build 2.4.1")
		p.WaitFor(t, `document.getElementById('view-job').dataset.rendered === 'true'`, showCells, 2*time.Minute)
		out := s.outputs(t, jid)
		want := map[string]int{}
		for _, evs := range out {
			require.Len(t, evs, 1)
			want[[]string{"", "OK", "SKIPPED", "FAILED", "UNREACHABLE", "CHANGED"}[int(evs[0]["status"].(float64))]]++
		}
		got := map[string]int{}
		for _, c := range p.cells() {
			got[c.Status]++
		}
		assert.Equal(t, want, got, "the page's colours are the server's statuses")
		assert.Equal(t, 2, got["UNREACHABLE"])
		assert.Equal(t, 6, got["FAILED"]) // tickets 3, 10, 17, 24, 31, 38
		p.Do(t, chromedp.Click(chromedp.CSS(`#grid .cell[data-status=FAILED]`)))
		p.WaitFor(t, `document.querySelector('#output-events pre.stderr') !== null`, `document.getElementById('output').innerText`, 10*time.Second)
		assert.Equal(t, "health check failed: /healthz answered 503\n", browsertest.Eval[string](t, b, `document.querySelector('#output-events pre.stderr').textContent`))
		b.Screenshot(t, "job-fleet")

		// The status chips and the name filter narrow the grid.
		visible := `[...document.querySelectorAll('#grid .cell')].filter(c => c.offsetParent !== null).map(c => c.dataset.host).join(' ')`
		p.Do(t, chromedp.Click(chromedp.CSS(`#job-counts button[data-status=UNREACHABLE]`)))
		p.WaitFor(t, visible+` === 'db1 db2'`, visible, 10*time.Second)
		p.Do(t, chromedp.Click(chromedp.CSS(`#job-counts button[data-status=UNREACHABLE]`)))
		p.Do(t, chromedp.SendKeys(chromedp.ID("host-filter"), "app1"))
		p.WaitFor(t, visible+` === 'app10 app11 app12 app13 app14 app15 app16 app17 app18 app19'`, visible, 10*time.Second)
	})

	t.Run("output is text", func(t *testing.T) {
		p.t = t
		markup := `<b id=injected>bold</b><img src=x onerror="document.title=1">`
		p.run("execute", "web1", "printf '%s' '"+markup+"'")
		p.WaitFor(t, `document.getElementById('view-job').dataset.rendered === 'true'`, showCells, time.Minute)
		p.Do(t, chromedp.Click(chromedp.CSS(`#grid .cell[data-host=web1]`)))
		p.WaitFor(t, `document.querySelector('#output-events pre.stdout') !== null`, `document.getElementById('output').innerText`, 10*time.Second)
		assert.Equal(t, markup, browsertest.Eval[string](t, b, `document.querySelector('#output-events pre.stdout').textContent`))
		assert.True(t, browsertest.Eval[bool](t, b, `document.getElementById('injected') === null && document.querySelector('#output img') === null`), "a host's output is never markup")
	})

	t.Run("job list", func(t *testing.T) {
		p.t = t
		p.Do(t, chromedp.Navigate(ui+"#/"))
		p.WaitFor(t, `document.querySelectorAll('#jobs .row:not([hidden])').length === 4 && [...document.querySelectorAll('#jobs .row:not([hidden])')].every(r => r.dataset.state !== '…')`,
			`document.getElementById('jobs').innerText`, 30*time.Second)
		// A job submitted elsewhere shows up without a reload, on top.
		var created map[string]string
		require.NoError(t, json.Unmarshal(s.api(t, "POST", "/ping", `{"targets":["web1","web2"]}`), &created))
		p.WaitFor(t, fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('#jobs .row:not([hidden])')].sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)[0];
			return r && r.dataset.jid === %q && r.dataset.state === 'Done' })()`, created["jid"]), `document.getElementById('jobs').innerText`, 30*time.Second)
		row := browsertest.Eval[map[string]string](t, b, fmt.Sprintf(`(() => { const r = document.querySelector('#jobs .row[data-jid=%q]');
			return {op: r.querySelector('.c-op').textContent, user: r.querySelector('.c-user').textContent, targets: r.querySelector('.c-targets').textContent} })()`, created["jid"]))
		assert.Equal(t, map[string]string{"op": "ping", "user": "alice", "targets": "2"}, row)
		b.Screenshot(t, "jobs")
	})

	t.Run("ended only when done", func(t *testing.T) {
		p.t = t
		// A job that has ended: a follow of it starts with the job as it
		// ended, then its events, then "done". A stream held after its
		// first message (a slow or cut connection) must not make the page
		// say the job ended while its hosts still wait for their results.
		var created map[string]string
		require.NoError(t, json.Unmarshal(s.api(t, "POST", "/execute", `{"targets":["web1","web2"],"cmd":"echo hi"}`), &created))
		jid := created["jid"]
		require.Eventually(t, func() bool {
			var job map[string]any
			require.NoError(t, json.Unmarshal(s.api(t, "GET", "/jobs/"+jid, ""), &job))
			return job["state"] != float64(1)
		}, time.Minute, 20*time.Millisecond)
		release := make(chan struct{})
		held := newHoldProxy(t, s.addr, release)
		let := sync.OnceFunc(func() { close(release) })
		t.Cleanup(let) // before the proxy closes: a held stream would keep it waiting
		p.Do(t, chromedp.Navigate("http://"+held+"/ui/#/jobs/"+jid))
		p.WaitFor(t, `document.getElementById('login').open`, `document.body.innerText`, 30*time.Second)
		p.Do(t, chromedp.SendKeys(chromedp.CSS("#login input[name=token]"), s.token), chromedp.Click(chromedp.CSS("#login button[type=submit]")))
		p.WaitFor(t, `document.getElementById('view-job').dataset.state !== '' && document.querySelectorAll('#grid .cell').length === 2`, showCells, 30*time.Second)
		assert.Equal(t, "Running", browsertest.Eval[string](t, b, `document.getElementById('view-job').dataset.state`),
			"the stream's first message is not the job's end")
		assert.Equal(t, 2, browsertest.Eval[int](t, b, p.count("PENDING")))
		let()
		p.WaitFor(t, `document.getElementById('view-job').dataset.rendered === 'true'`, showCells, 30*time.Second)
		assert.Equal(t, "Done", browsertest.Eval[string](t, b, `document.getElementById('view-job').dataset.state`))
		assert.Equal(t, 2, browsertest.Eval[int](t, b, p.count("CHANGED")))
	})

	// Every API call carried the token in its header; no URL held it.
	var api int
	for _, r := range b.Requests() {
		assert.NotContains(t, r.URL, s.token, "the token is never in a URL")
		if strings.Contains(r.URL, "/ui/") {
			continue
		}
		api++
		if r.Headers["authorization"] != "" {
			assert.Contains(t, []string{"Bearer " + s.token, "Bearer not-the-token"}, r.Headers["authorization"])
		}
	}
	assert.NotZero(t, api)
	assert.Empty(t, b.Problems(), "no script error, no CSP violation")
}
