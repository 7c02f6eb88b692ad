package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forgery is a request a browser sends on behalf of another site.
type forgery struct {
	name    string
	host    string // Host header; "" keeps the server's address
	headers map[string]string
}

// TestBrowserForgeriesRunNothing sends every state-changing request, GET and
// POST, as a hostile web page would (DNS rebinding, <img src>, a form post,
// a page on another port, an old browser) to the zero-config server, and
// proves with canary files that nothing ran. Plain clients and same-origin
// pages keep working.
func TestBrowserForgeriesRunNothing(t *testing.T) {
	dir := t.TempDir()
	canaries := filepath.Join(dir, "canaries")
	require.NoError(t, os.Mkdir(canaries, 0o755))
	// Every way a request can change a host ends in a canary file: execute
	// touches one, the role's script touches one, and the service manager
	// found first on PATH touches one.
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "roles", "web"), 0o755))
	require.NoError(t, os.Mkdir(bin, 0o755))
	canary := func(name string) []byte { return []byte("#!/bin/sh\ntouch " + canaries + "/" + name + "-$$\n") }
	require.NoError(t, os.WriteFile(filepath.Join(bin, "service"), canary("service"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "roles", "web", "main.sh"), canary("deploy"), 0o755))
	port := freePort(t)
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[sshnative]\nroles = %s\n", port, filepath.Join(dir, "roles")))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr

	// A running job for the cancel and delete forgeries.
	code, body := httpDo(t, "POST", base+"/execute", `{"targets":["localhost"],"cmd":"sleep 60"}`)
	require.Equal(t, 201, code, string(body))
	var created map[string]string
	require.NoError(t, json.Unmarshal(body, &created))
	jid := created["jid"]

	touch := "touch%20" + canaries + "/execute"
	endpoints := []struct{ method, path, body string }{
		{"GET", "/ping?target=localhost", ""},
		{"GET", "/facter?target=localhost", ""},
		{"GET", "/service?target=localhost&name=nginx&state=2", ""},
		{"GET", "/execute?target=localhost&cmd=" + touch, ""},
		{"POST", "/ping", `{"targets":["localhost"]}`},
		{"POST", "/facter", `{"targets":["localhost"]}`},
		{"POST", "/service", `{"targets":["localhost"],"name":"nginx","state":2}`},
		{"POST", "/execute", `{"targets":["localhost"],"cmd":"touch ` + canaries + `/execute"}`},
		{"POST", "/deploy", `{"targets":["localhost"],"role":"web"}`},
		{"POST", "/tasks", `{"targets":["localhost"],"taskname":"x","tasktype":"rollingrestart","taskopts":{"service":"nginx"}}`},
		{"POST", "/jobs/" + jid + "/cancel", ""},
		{"DELETE", "/jobs/" + jid, ""},
		{"GET", "/target", ""},
		{"GET", "/jobs", ""},
		{"GET", "/jobs/" + jid + "?follow=1", ""},
	}
	self := "http://" + p.addr
	forgeries := []forgery{
		{"DNS rebinding", fmt.Sprintf("rebind.attacker.example:%d", port), map[string]string{
			"Origin": fmt.Sprintf("http://rebind.attacker.example:%d", port), "Sec-Fetch-Site": "same-origin"}},
		{"img from another site", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}},
		{"form post from another site", "", map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}},
		{"page on another port", "", map[string]string{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}},
		{"old browser, Origin only", "", map[string]string{"Origin": "http://attacker.example"}},
		{"old browser, Referer only", "", map[string]string{"Referer": "http://attacker.example/page.html"}},
		{"sandboxed frame", "", map[string]string{"Origin": "null"}},
	}
	do := func(method, path, body, host string, headers map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		if host != "" {
			req.Host = host
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, string(b)
	}
	for _, f := range forgeries {
		for _, ep := range endpoints {
			res, body := do(ep.method, ep.path, ep.body, f.host, f.headers)
			assert.Equal(t, http.StatusForbidden, res.StatusCode, "%s: %s %s: %s", f.name, ep.method, ep.path, body)
			var msg map[string]string
			if assert.NoError(t, json.Unmarshal([]byte(body), &msg), body) {
				assert.NotEmpty(t, msg["message"])
			}
			assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))
		}
		// A CORS preflight is never answered with a grant.
		res, _ := do("OPTIONS", "/execute", "", f.host, mergeHeaders(f.headers, map[string]string{
			"Origin": "http://attacker.example", "Access-Control-Request-Method": "POST"}))
		assert.NotEqual(t, http.StatusOK, res.StatusCode)
		assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), f.name)
		assert.Empty(t, res.Header.Get("Access-Control-Allow-Methods"), f.name)
	}

	// Nothing ran: no canary, and the only job is the one made above, still
	// running (neither cancelled nor deleted).
	entries, err := os.ReadDir(canaries)
	require.NoError(t, err)
	assert.Empty(t, entries, "a forged request ran something")
	code, body = httpDo(t, "GET", base+"/jobs", "")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `["`+jid+`"]`, string(body))
	code, body = httpDo(t, "GET", base+"/jobs/"+jid, "")
	require.Equal(t, 200, code)
	var job map[string]any
	require.NoError(t, json.Unmarshal(body, &job))
	assert.EqualValues(t, 1, job["state"], "the job is still running")

	// The same requests from plain clients and same-origin pages work, and
	// each leaves its canary: the canaries above would have shown a run.
	sameOrigin := map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}
	for _, h := range []struct {
		name    string
		host    string
		headers map[string]string
	}{
		{"curl", "", nil},
		{"same-origin page", "", sameOrigin},
		{"typed in the address bar", "", map[string]string{"Sec-Fetch-Site": "none"}},
		{"localhost", fmt.Sprintf("localhost:%d", port), nil},
	} {
		res, body := do("GET", "/execute?target=localhost&cmd="+touch+"-"+strings.ReplaceAll(h.name, " ", "-"), "", h.host, h.headers)
		assert.Equal(t, 200, res.StatusCode, "%s: %s", h.name, body)
	}
	res, body2 := do("POST", "/deploy", `{"targets":["localhost"],"role":"web"}`, "", sameOrigin)
	require.Equal(t, 201, res.StatusCode, body2)
	require.NoError(t, json.Unmarshal([]byte(body2), &created))
	res, body2 = do("GET", "/jobs/"+created["jid"]+"?follow=1", "", "", sameOrigin)
	require.Equal(t, 200, res.StatusCode, body2)
	res, body2 = do("GET", "/service?target=localhost&name=nginx&state=2", "", "", sameOrigin)
	require.Equal(t, 200, res.StatusCode, body2)
	res, body2 = do("POST", "/jobs/"+jid+"/cancel", "", "", sameOrigin)
	require.Equal(t, 202, res.StatusCode, body2)
	entries, err = os.ReadDir(canaries)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for _, want := range []string{"execute-curl", "execute-same-origin-page", "execute-typed-in-the-address-bar", "execute-localhost", "service-", "deploy-"} {
		found := false
		for _, n := range names {
			found = found || strings.HasPrefix(n, want)
		}
		assert.True(t, found, "canary %s missing from %v", want, names)
	}
	p.stop(t)
}

func mergeHeaders(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
