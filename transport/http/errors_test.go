package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInput checks every validation rule of API.md: status, a
// {"message"} body naming the problem, and that nothing was stored.
func TestBadInput(t *testing.T) {
	s := newServer(t, serverOpts{api: exehttp.Options{MaxBodyBytes: 256}})
	cases := []struct {
		method, path, ctype, body string
		status                    int
		msg                       string
	}{
		{"GET", "/ping", "", "", 400, "target: at least one target host is required"},
		{"GET", "/ping?target=ghost&target=nowhere", "", "", 404, "no hosts match that target: ghost, nowhere"},
		{"GET", "/ping?target=localhost&target=ghost", "", "", 404, "no hosts match that target: ghost"},
		{"GET", "/ping?target=bad%20host", "", "", 400, `targets: "bad host" is not a valid host name`},
		{"GET", "/service?target=localhost&name=nginx&state=3", "", "", 400, "state: must be 0 (started), 1 (stopped) or 2 (restarted)"},
		{"GET", "/service?target=localhost&name=nginx&state=-1", "", "", 400, "state: must be 0 (started), 1 (stopped) or 2 (restarted)"},
		{"GET", "/service?target=localhost&name=nginx&state=x", "", "", 400, `state: "x" is not 0, 1 or 2`},
		{"GET", "/service?target=localhost&name=nginx", "", "", 400, "state: required (0 started, 1 stopped, 2 restarted)"},
		{"GET", "/service?target=localhost&state=1", "", "", 400, "name: a service name is required"},
		{"GET", "/service?target=localhost&state=1&name=a%3Brm", "", "", 400, `name: "a;rm" is not a valid service name (1-256 of A-Z a-z 0-9 @ . _ : -, not starting with -)`},
		{"GET", "/service?target=localhost&state=2&name=--help", "", "", 400, `name: "--help" is not a valid service name`},
		{"POST", "/service", "application/json", `{"targets":["localhost"],"name":"-h","state":2}`, 400, `name: "-h" is not a valid service name`},
		{"GET", "/service?target=localhost&state=1&name=" + strings.Repeat("a", 257), "", "", 400, "name: "},
		{"GET", "/service?target=localhost&state=2&name=nginx&graceful=maybe", "", "", 400, `graceful: "maybe" is not a boolean`},
		{"GET", "/execute?target=localhost", "", "", 400, "cmd: a command is required"},
		{"GET", "/execute?target=localhost&cmd=%20", "", "", 400, "cmd: a command is required"},
		{"GET", "/jobs?detail=2", "", "", 400, `detail: "2" is not a boolean`},
		{"GET", "/jobs/x?outputs=on", "", "", 400, `outputs: "on" is not a boolean`},
		{"GET", "/jobs/x?follow=", "", "", 400, `follow: "" is not a boolean`},
		{"GET", "/jobs/no-such-job", "", "", 404, "no such job"},
		{"GET", "/jobs/no-such-job?follow=1", "", "", 404, "no such job"},

		{"POST", "/ping", "text/plain", `{"targets":["localhost"]}`, 415, "Content-Type must be application/json"},
		{"POST", "/ping", "application/x-www-form-urlencoded", `targets=localhost`, 415, "Content-Type must be application/json"},
		{"POST", "/ping", "application/json", `{"targets":["localhost"],"pad":"` + strings.Repeat("x", 300) + `"}`, 413, "request body is larger than the limit of 256 bytes"},
		{"POST", "/ping", "application/json", ``, 400, "request body must be a JSON object"},
		{"POST", "/ping", "application/json", `[1]`, 400, "request body must be a JSON object"},
		{"POST", "/ping", "application/json", `{"targets":`, 400, "request body is truncated JSON"},
		{"POST", "/ping", "application/json", `{"targets":["localhost"]} {}`, 400, "request body must hold a single JSON object"},
		{"POST", "/ping", "application/json", `{"targets":"localhost"}`, 400, "targets: must be a list of host names"},
		{"POST", "/ping", "application/json", `{"targets":[1]}`, 400, "targets: must be a list of host names"},
		{"POST", "/execute", "application/json", `{"targets":"localhost","cmd":"true"}`, 400, "targets: must be a list of host names"},
		{"POST", "/deploy", "application/json", `{"target":{},"role":"r"}`, 400, "target: must be a list of host names"},
		{"POST", "/ping", "application/json", `{"targets":[]}`, 400, "targets: at least one host is required"},
		{"POST", "/ping", "application/json", `{}`, 400, "targets: at least one host is required"},
		{"POST", "/ping", "application/json", `{"targets":["ghost"]}`, 404, "no hosts match that target: ghost"},
		{"POST", "/service", "application/json", `{"targets":["localhost"],"name":"nginx","state":"2"}`, 400, "state: must be an integer (0, 1 or 2)"},
		{"POST", "/service", "application/json", `{"targets":["localhost"],"name":"nginx","state":5}`, 400, "state: must be 0 (started), 1 (stopped) or 2 (restarted)"},
		{"POST", "/service", "application/json", `{"targets":["localhost"],"name":"nginx"}`, 400, "state: required"},
		{"POST", "/service", "application/json", `{"targets":["localhost"],"name":"","state":0}`, 400, "name: a service name is required"},
		{"POST", "/service", "application/json", `{"targets":["localhost"],"name":"x","state":0,"graceful":"perhaps"}`, 400, "graceful: must be a boolean"},
		{"POST", "/service", "application/json", `{"targets":["localhost"],"name":7,"state":0}`, 400, "name: must be a string"},
		{"POST", "/execute", "application/json", `{"targets":["localhost"],"cmd":""}`, 400, "cmd: a command is required"},
		{"POST", "/execute", "application/json", `{"targets":["localhost"],"cmd":["ls"]}`, 400, "cmd: must be a string"},
		{"POST", "/deploy", "application/json", `{"targets":["localhost"],"role":""}`, 400, "role: a role name is required"},
		{"POST", "/deploy", "application/json", `{"targets":["localhost"],"role":"../x"}`, 400, `role: "../x" is not a valid role name`},
		{"POST", "/deploy", "application/json", `{"targets":["localhost"],"role":"r","partial":"tag"}`, 400, "partial: must be a list of strings"},
		{"POST", "/deploy", "application/json", `{"targets":["localhost"],"role":"r","partial":[1]}`, 400, "partial: must be a list of strings"},
		{"POST", "/deploy", "application/json", `{"targets":["localhost"],"role":"r","extra_vars":[]}`, 400, "extra_vars: must be an object"},
		{"POST", "/deploy", "application/json", `{"targets":["localhost"],"role":"r","extra_vars":"a=b"}`, 400, "extra_vars: must be an object"},
		{"POST", "/tasks", "application/json", `{"targets":["localhost"]}`, 400, "tasktype: a task type is required"},
		{"POST", "/tasks", "application/json", `{"targets":["localhost"],"tasktype":"nope"}`, 400, `tasktype: unknown task type "nope"`},
	}
	for _, c := range cases {
		r := s.do(c.method, c.path, c.ctype, c.body)
		name := c.method + " " + c.path + " " + c.body
		if !assert.Equal(t, c.status, r.status, name+": "+string(r.body)) {
			continue
		}
		assert.Contains(t, r.message(t), c.msg, name)
	}
	r := s.get("/jobs")
	assert.JSONEq(t, `[]`, string(r.body), "no bad request stored a job")
}

func TestUnknownFieldsIgnoredAndNoContentTypeAccepted(t *testing.T) {
	s := newServer(t, serverOpts{})
	r := s.do("POST", "/execute", "", `{"targets":["localhost"],"cmd":"true","priority":"high","nested":{"a":[1]}}`)
	assert.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = s.do("POST", "/ping", "application/json; charset=utf-8", `{"targets":["localhost"]}`)
	assert.Equal(t, http.StatusCreated, r.status, string(r.body))
}

func TestMuxErrorsAreJSON(t *testing.T) {
	s := newServer(t, serverOpts{})
	r := s.get("/nope")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "no such endpoint: /nope", r.message(t))

	for path, allow := range map[string]string{
		"/ping":          "GET, POST",
		"/deploy":        "POST",
		"/jobs":          "GET, HEAD",
		"/jobs/x":        "DELETE, GET, HEAD",
		"/jobs/x/cancel": "POST",
		"/healthz":       "GET, HEAD",
		"/target":        "GET, HEAD",
	} {
		r := s.do("PUT", path, "application/json", `{}`)
		assert.Equal(t, http.StatusMethodNotAllowed, r.status, path)
		assert.Equal(t, allow, r.header.Get("Allow"), path)
		assert.Contains(t, r.message(t), "method PUT is not allowed here", path)
	}
	r = s.do("GET", "/deploy", "", "")
	assert.Equal(t, http.StatusMethodNotAllowed, r.status, "deploy is async only")
}

func TestConflictAndBusy(t *testing.T) {
	s := newServer(t, serverOpts{tasks: map[string]exe.Task{"echo": echoTask{}}, disp: exe.LocalOptions{Workers: 1, Queue: 1}})
	first := s.submit("/tasks", `{"targets":["localhost"],"tasktype":"echo","taskopts":{"cmd":"sleep 60"}}`)
	r := s.post("/tasks", `{"targets":["localhost"],"tasktype":"echo","taskopts":{"cmd":"true"}}`)
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "operate conflict: host localhost is locked by running job "+first, r.message(t))

	// One worker, a queue of one: the third job cannot be taken.
	var busy resp
	for i := 0; i < 3; i++ {
		busy = s.post("/execute", `{"targets":["localhost"],"cmd":"sleep 60"}`)
		if busy.status != http.StatusCreated {
			break
		}
	}
	assert.Equal(t, http.StatusServiceUnavailable, busy.status)
	assert.Contains(t, busy.message(t), "job queue is full")
	var ids []string
	s.get("/jobs").json(t, &ids)
	for _, jid := range ids {
		s.post("/jobs/"+jid+"/cancel", "")
	}
}

// noFacter is sshnative without facter: the 501 path.
type noFacter struct{ *sshnative.Executor }

func (noFacter) Facter(context.Context, []string, exe.Emit) error {
	return exe.Errorf(exe.ErrNotSupported, "facter is not supported by this executor")
}

func TestNotSupportedIs501(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: noFacter{x}})
	require.NoError(t, err)
	ts := httptest.NewServer(openapitest.Handler(t, exehttp.New(eng, exehttp.Options{}), ""))
	defer ts.Close()
	s := &server{Server: ts, t: t}
	r := s.get("/facter?target=localhost")
	assert.Equal(t, http.StatusNotImplemented, r.status)
	assert.Equal(t, "facter is not supported by this executor", r.message(t))
}

// pinger writes one operation, ping, and lists it in the exe.Only it
// embeds: the one declaration an executor author writes.
type pinger struct {
	exe.Only
	x *sshnative.Executor
}

func (p pinger) Match(ctx context.Context, pattern string) ([]string, error) {
	return p.x.Match(ctx, pattern)
}

func (p pinger) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return p.x.Ping(ctx, hosts, emit)
}

// An operation an executor does not list in its exe.Only is 501 at once,
// sync and async alike: no job is stored that would fail later.
func TestUndeclaredOperationIs501SyncAndAsync(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: pinger{Only: exe.Only{exe.OpPing}, x: x}})
	require.NoError(t, err)
	defer eng.Shutdown(context.Background())
	ts := httptest.NewServer(exehttp.New(eng, exehttp.Options{}))
	defer ts.Close()
	s := &server{Server: ts, t: t}
	for _, r := range []resp{s.get("/facter?target=localhost"), s.post("/facter", `{"targets": ["localhost"]}`)} {
		assert.Equal(t, http.StatusNotImplemented, r.status, string(r.body))
		assert.Equal(t, "facter is not supported by this executor", r.message(t))
	}
	var ids []string
	s.get("/jobs").json(t, &ids)
	assert.Empty(t, ids, "nothing stored")
	assert.Equal(t, http.StatusOK, s.get("/ping?target=localhost").status)
}

func TestBearerAuth(t *testing.T) {
	s := newServer(t, serverOpts{api: exehttp.Options{Tokens: []string{"alpha", "beta"}}})
	for _, tok := range []string{"", "wrong", "alph", "alphaa"} {
		s.token = tok
		r := s.get("/target")
		assert.Equal(t, http.StatusUnauthorized, r.status, tok)
		assert.Equal(t, "missing or invalid bearer token", r.message(t))
		assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))
	}
	r := s.post("/ping", `{"targets":["localhost"]}`)
	assert.Equal(t, http.StatusUnauthorized, r.status, "async endpoints too")
	for _, tok := range []string{"alpha", "beta"} {
		s.token = tok
		assert.Equal(t, http.StatusOK, s.get("/target").status, tok)
	}
	s.token = ""
	assert.Equal(t, http.StatusOK, s.get("/healthz").status, "health needs no token")
}

func TestMountUnderPrefix(t *testing.T) {
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("host app")) })
	exehttp.New(eng, exehttp.Options{Prefix: "/exed/"}).Register(mux)
	ts := httptest.NewServer(openapitest.Handler(t, mux, "/exed"))
	defer ts.Close()
	s := &server{Server: ts, t: t}
	r := s.get("/exed/ping?target=localhost")
	assert.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"localhost":{"status":1}}`, string(r.body))
	assert.Equal(t, "host app", string(s.get("/other").body), "the host's own routes are untouched")
	r = s.get("/exed/nope")
	assert.Equal(t, http.StatusNotFound, r.status)
	r.message(t)
}

// A prefix is a path of plain segments, with or without its slashes
// ("exe", "exe/" and "/exe/" mount at "/exe/"); anything else, and a nil
// engine, panic in New, naming the mistake, as http.ServeMux does on a
// bad pattern, rather than mount nothing reachable or panic later.
func TestPrefixForms(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x})
	require.NoError(t, err)
	defer eng.Shutdown(context.Background())
	for _, prefix := range []string{"exe", "exe/", "/exe/", "/exe", "/svc/exe.v1"} {
		mux := http.NewServeMux()
		exehttp.New(eng, exehttp.Options{Prefix: prefix}).Register(mux)
		ts := httptest.NewServer(mux)
		s := &server{Server: ts, t: t}
		path := "/" + strings.Trim(prefix, "/") + "/ping?target=localhost"
		assert.Equal(t, http.StatusOK, s.get(path).status, "prefix %q: %s", prefix, path)
		ts.Close()
	}
	for prefix, want := range map[string]string{
		"/a b":     `exehttp: Options.Prefix "/a b": ' ' is not allowed in a prefix (letters, digits, "-._~" and "/")`,
		"/a/{jid}": `exehttp: Options.Prefix "/a/{jid}": '{' is not allowed in a prefix (letters, digits, "-._~" and "/")`,
		"/a%20b":   `exehttp: Options.Prefix "/a%20b": '%' is not allowed in a prefix (letters, digits, "-._~" and "/")`,
		"/a//b":    `exehttp: Options.Prefix "/a//b": an empty or dot segment`,
		"/a/../b":  `exehttp: Options.Prefix "/a/../b": an empty or dot segment`,
	} {
		assert.PanicsWithValue(t, want, func() { exehttp.New(eng, exehttp.Options{Prefix: prefix}) }, prefix)
	}
	assert.PanicsWithValue(t, "exehttp: New needs an Engine, not nil", func() { exehttp.New(nil, exehttp.Options{}) })
}
