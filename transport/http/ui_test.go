package http_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/0ops/exed/transport/http/internal/ui"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// uiServer serves the API with the dashboard (not through openapitest:
// the dashboard's files are no part of the API's contract).
func uiServer(t *testing.T, opts exehttp.Options) *httptest.Server {
	t.Helper()
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x})
	require.NoError(t, err)
	ts := httptest.NewServer(exehttp.New(eng, opts))
	t.Cleanup(func() {
		ts.Close()
		_ = eng.Shutdown(context.Background())
	})
	return ts
}

func get(t *testing.T, ts *httptest.Server, method, p string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+p, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// Redirects are answers to check, not to follow.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

// Every file of the dashboard is served under the prefix, without a
// token, with its type, the Content Security Policy and its companion
// headers; the page is at ui/ itself; revalidation answers 304; other
// methods are 405 and unknown files 404, in JSON. Without Options.UI
// there is no /ui/ at all.
func TestUIServesItsFiles(t *testing.T) {
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for _, prefix := range []string{"", "/exe"} {
		ts := uiServer(t, exehttp.Options{Prefix: prefix, UI: true, Tokens: []string{"s3cret-token-for-the-api"}})
		names := ui.Names()
		require.Contains(t, names, "index.html")
		for _, name := range names {
			want, _ := ui.File(name)
			for _, method := range []string{"GET", "HEAD"} {
				res, body := get(t, ts, method, prefix+"/ui/"+name, nil)
				require.Equal(t, 200, res.StatusCode, "%s %s", method, name)
				assert.Equal(t, types[path.Ext(name)], res.Header.Get("Content-Type"), name)
				assert.Equal(t, exehttp.UIContentSecurityPolicy, res.Header.Get("Content-Security-Policy"), name)
				assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), name)
				assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), name)
				assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"), name)
				assert.Equal(t, "no-cache", res.Header.Get("Cache-Control"), name)
				if method == "GET" {
					assert.Equal(t, want, body, name)
				}
				etag := res.Header.Get("ETag")
				require.NotEmpty(t, etag)
				res, _ = get(t, ts, method, prefix+"/ui/"+name, map[string]string{"If-None-Match": etag})
				assert.Equal(t, http.StatusNotModified, res.StatusCode, name)
			}
		}
		index, _ := ui.File("index.html")
		res, body := get(t, ts, "GET", prefix+"/ui/", nil)
		assert.Equal(t, 200, res.StatusCode)
		assert.Equal(t, index, body, "ui/ is the page")

		res, _ = get(t, ts, "GET", prefix+"/ui", nil)
		assert.Equal(t, http.StatusTemporaryRedirect, res.StatusCode)
		assert.Equal(t, prefix+"/ui/", res.Header.Get("Location"))

		res, body = get(t, ts, "POST", prefix+"/ui/", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
		assert.Equal(t, "GET, HEAD", res.Header.Get("Allow"))
		assert.JSONEq(t, `{"message":"method POST is not allowed here; allowed: GET, HEAD"}`, string(body))

		res, body = get(t, ts, "GET", prefix+"/ui/nope.js", nil)
		assert.Equal(t, 404, res.StatusCode)
		assert.JSONEq(t, `{"message":"no such file of the dashboard: `+prefix+`/ui/nope.js"}`, string(body))

		res, _ = get(t, ts, "GET", prefix+"/jobs", nil)
		assert.Equal(t, 401, res.StatusCode, "the API still needs its token")
		assert.Empty(t, res.Header.Get("Content-Security-Policy"), "API answers are not pages")
	}
	ts := uiServer(t, exehttp.Options{})
	res, body := get(t, ts, "GET", "/ui/", nil)
	assert.Equal(t, 404, res.StatusCode)
	assert.JSONEq(t, `{"message":"no such endpoint: /ui/"}`, string(body), "no dashboard unless Options.UI")
}

// The page holds no inline script or style, which the Content Security
// Policy would block: no <script> without src, no <style>, no style or
// on* attributes, no javascript: URLs; every file it loads is one of the
// embedded files; the scripts write no HTML from strings and evaluate no
// code; the policy itself allows no inline code and no other origin.
func TestUIHasNoInlineScriptOrStyle(t *testing.T) {
	page, ok := ui.File("index.html")
	require.True(t, ok)
	doc, err := html.Parse(bytes.NewReader(page))
	require.NoError(t, err)
	var loads []string
	var scripts int
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
				assert.NotEqual(t, "style", a.Key, "<%s style>: inline style", n.Data)
				assert.False(t, strings.HasPrefix(a.Key, "on"), "<%s %s>: inline event handler", n.Data, a.Key)
				assert.False(t, strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:"), "<%s %s>: javascript: URL", n.Data, a.Key)
			}
			switch n.Data {
			case "script":
				scripts++
				require.NotEmpty(t, attrs["src"], "inline <script>")
				assert.Nil(t, n.FirstChild, "a <script src> with a body")
				assert.Equal(t, "module", attrs["type"])
				loads = append(loads, attrs["src"])
			case "style":
				t.Errorf("inline <style>")
			case "link":
				loads = append(loads, attrs["href"])
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	assert.Equal(t, 1, scripts)
	names := ui.Names()
	imports := regexp.MustCompile(`(?m)^import .* from '\./([^']+)';$`)
	for _, name := range names {
		if path.Ext(name) != ".js" {
			continue
		}
		src, _ := ui.File(name)
		for _, m := range imports.FindAllSubmatch(src, -1) {
			loads = append(loads, string(m[1]))
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", "cssText"} {
			assert.NotContains(t, string(src), bad, "%s: %s", name, bad)
		}
	}
	for _, l := range loads {
		assert.Contains(t, names, l, "the page loads %s, which is not an embedded file", l)
	}
	for _, d := range strings.Split(exehttp.UIContentSecurityPolicy, ";") {
		assert.NotContains(t, d, "unsafe-", d)
		assert.NotContains(t, d, "*", d)
		assert.NotContains(t, d, "http", d)
	}
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "require-trusted-types-for 'script'"} {
		assert.True(t, slices.Contains(splitTrim(exehttp.UIContentSecurityPolicy), want), want)
	}
}

func splitTrim(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// Browsers' requests: the page's own calls (same-origin fetches, the
// event stream included) pass the origin guard; another site can link to
// the page (a top-level navigation) but not load its files into its own
// page, not call the API, not navigate to an API path, and a foreign Host
// (DNS rebinding) is refused even for the page.
func TestUIOrigin(t *testing.T) {
	const token = "s3cret-token-for-the-api"
	ts := uiServer(t, exehttp.Options{UI: true, Tokens: []string{token}})
	navigate := map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	bearer := "Bearer " + token
	cases := []struct {
		name, method, path string
		header             map[string]string
		want               int
	}{
		{"typed in the address bar", "GET", "/ui/", with(navigate, "Sec-Fetch-Site", "none"), 200},
		{"a link from another site", "GET", "/ui/", with(navigate, "Sec-Fetch-Site", "cross-site"), 200},
		{"a link from another site to index.html", "GET", "/ui/index.html", with(navigate, "Sec-Fetch-Site", "cross-site"), 200},
		{"the page's module", "GET", "/ui/app.js", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "script"}, 200},
		{"another site's page loads the module", "GET", "/ui/app.js", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "script"}, 403},
		{"another site frames the page", "GET", "/ui/", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, 403},
		{"another site posts a form to the page", "POST", "/ui/", with(navigate, "Sec-Fetch-Site", "cross-site"), 403},
		{"a link from another site to the API", "GET", "/execute?target=localhost&cmd=true", with(navigate, "Sec-Fetch-Site", "cross-site", "Authorization", bearer), 403},
		{"an older browser's link to the API", "GET", "/jobs", map[string]string{"Referer": "http://attacker.example/", "Authorization": bearer}, 403},
		{"DNS rebinding to the page", "GET", "/ui/", with(navigate, "Sec-Fetch-Site", "none", "Host", "attacker.example"), 403},
		{"the page's fetch", "GET", "/jobs", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Authorization": bearer}, 200},
		{"the page's POST", "POST", "/jobs/00000000-0000-4000-8000-000000000000/cancel", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Origin": "", "Authorization": bearer}, 404},
		{"another site's fetch", "GET", "/jobs", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Authorization": bearer}, 403},
	}
	for _, c := range cases {
		h := c.header
		if h["Origin"] == "" && c.method == "POST" && h["Sec-Fetch-Site"] == "same-origin" {
			h = with(h, "Origin", ts.URL)
		}
		req, err := http.NewRequest(c.method, ts.URL+c.path, nil)
		require.NoError(t, err)
		for k, v := range h {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		res, err := ts.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, c.want, res.StatusCode, c.name)
	}

	// The page's event stream: a same-origin fetch with the token.
	req, err := http.NewRequest("POST", ts.URL+"/ping", strings.NewReader(`{"targets":["localhost"]}`))
	require.NoError(t, err)
	for k, v := range map[string]string{"Authorization": bearer, "Content-Type": "application/json",
		"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Origin": ts.URL} {
		req.Header.Set(k, v)
	}
	res, err := ts.Client().Do(req)
	require.NoError(t, err)
	created, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 201, res.StatusCode, string(created))
	jid := regexp.MustCompile(`"jid":"([^"]+)"`).FindStringSubmatch(string(created))[1]
	req, err = http.NewRequest("GET", ts.URL+"/jobs/"+jid+"?follow=1", nil)
	require.NoError(t, err)
	for k, v := range map[string]string{"Authorization": bearer, "Accept": "text/event-stream",
		"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Last-Event-ID": "0"} {
		req.Header.Set(k, v)
	}
	res, err = ts.Client().Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	assert.Contains(t, string(body), "id: 1\nevent: host\n")
	assert.Contains(t, string(body), "\nevent: done\n")
}
