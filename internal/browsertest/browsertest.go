// Package browsertest runs a real headless Chromium (Debian's chromium
// package) for tests of the job dashboard, driven over the DevTools
// protocol by chromedp. Each Browser has a fresh profile, no network but
// the pages a test opens (no sync, updates or QUIC), and records what a
// test checks besides the page itself: the page's script errors and
// Content Security Policy violations, and the requests it sent.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/internal/testenv"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Request is a request the page sent.
type Request struct {
	Method, URL string
	Headers     map[string]string
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	// Ctx is the tab's context: pass it to chromedp.Run.
	Ctx context.Context

	mu       sync.Mutex
	problems []string
	requests []Request
}

// Path returns the chromium binary, or skips t (fails it under
// EXE_REQUIRE_INTEGRATION=1) when there is none.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Need(t, false, "the chromium binary (Debian package chromium)")
	return ""
}

// Start starts Chromium with a window of width x height CSS pixels; it
// is stopped when t ends.
func Start(t testing.TB, width, height int) *Browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path(t)),
		chromedp.Flag("headless", true),
		// Tests run as root in containers, where Chromium's sandbox
		// cannot start.
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		// The machine's network is closed: nothing may try to reach out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		// /dev/shm is small in containers.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx}
	// The first call starts the browser.
	err := chromedp.Listen(ctx, b.listen)
	if err == nil {
		_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	}
	if err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("browsertest: starting chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return b
}

func (b *Browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("script error at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *log.EventEntryAdded:
		// Chromium reports Content Security Policy violations here.
		if e := ev.Entry; e.Level == log.EntryLevelError && strings.Contains(e.Text, "Content Security Policy") {
			b.problems = append(b.problems, "CSP: "+e.Text)
		}
	case *network.EventRequestWillBeSent:
		h := map[string]string{}
		for k, v := range ev.Request.Headers {
			h[strings.ToLower(k)] = fmt.Sprint(v)
		}
		b.requests = append(b.requests, Request{Method: ev.Request.Method, URL: ev.Request.URL, Headers: h})
	}
}

// Problems are the page's uncaught script errors and Content Security
// Policy violations so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Requests are the requests the page sent so far, in order.
func (b *Browser) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Request(nil), b.requests...)
}

// Do runs actions in the tab, failing t on error.
func (b *Browser) Do(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		t.Fatalf("browsertest: %v\npage problems: %v", err, b.Problems())
	}
}

// WaitFor waits until the JavaScript expression is true in the page
// (evaluated on every animation frame), failing t after timeout with
// what the page shows: the value of show, another expression.
func (b *Browser) WaitFor(t testing.TB, expr, show string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	// A navigation replaces the page's JavaScript context while a poll may
	// run in the old one ("Cannot find context with specified id"): poll
	// again in the new one, until the deadline.
	for attempt := 0; attempt < 100; attempt++ {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		ctx, cancel := context.WithTimeout(b.Ctx, left+5*time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(left)))
		cancel()
		if err == nil && ok {
			return
		}
		if err == nil || !strings.Contains(err.Error(), "context") || b.Ctx.Err() != nil {
			break
		}
	}
	var shown any
	if show != "" {
		shown, _ = chromedp.Run(b.Ctx, chromedp.Evaluate[any](show))
	}
	t.Fatalf("browsertest: %s still false after %v (%v); page shows: %v; page problems: %v", expr, timeout, err, shown, b.Problems())
}

// Eval evaluates a JavaScript expression, failing t when it throws.
func Eval[T any](t testing.TB, b *Browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browsertest: %s: %v\npage problems: %v", expr, err, b.Problems())
	}
	return v
}

// Screenshot writes a PNG of the viewport to ArtifactDir(t)/name.png,
// logs and returns its path.
func (b *Browser) Screenshot(t testing.TB, name string) string {
	t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("browsertest: screenshot: %v", err)
	}
	p := filepath.Join(ArtifactDir(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ArtifactDir is where a test leaves files for people to look at: a
// directory named after the test under $EXE_ARTIFACTS when that is set
// (CI keeps it), else a temporary directory of the test's.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("EXE_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return dir
}
