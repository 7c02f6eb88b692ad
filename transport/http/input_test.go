package http_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBodyKeysAreExact: a member name that differs from a field's only by
// case is an unknown field (ignored), and a name given twice in any object
// of the body is a 400; neither stores a job.
func TestBodyKeysAreExact(t *testing.T) {
	s := newServer(t, serverOpts{tasks: map[string]exe.Task{"echo": echoTask{}}})
	cases := []struct {
		path, body, msg string
	}{
		{"/execute", `{"targets":["localhost"],"CMD":"echo hi"}`, "cmd: a command is required"},
		{"/execute", `{"targets":["localhost"],"Cmd":"echo hi"}`, "cmd: a command is required"},
		{"/ping", `{"Targets":["localhost"]}`, "targets: at least one host is required"},
		{"/ping", `{"TARGET":["localhost"]}`, "targets: at least one host is required"},
		{"/service", `{"targets":["localhost"],"NAME":"nginx","state":0}`, "name: a service name is required"},
		{"/service", `{"targets":["localhost"],"name":"nginx","State":0}`, "state: required"},
		{"/deploy", `{"targets":["localhost"],"Role":"web"}`, "role: a role name is required"},
		{"/tasks", `{"targets":["localhost"],"TaskType":"echo"}`, "tasktype: a task type is required"},

		{"/execute", `{"targets":["localhost"],"cmd":"true","cmd":"echo pwned"}`, `duplicate key "cmd" in the request body`},
		{"/execute", `{"targets":["localhost"],"cmd":"true","c\u006dd":"echo pwned"}`, `duplicate key "cmd" in the request body`},
		{"/ping", `{"targets":["localhost"],"targets":["ghost"]}`, `duplicate key "targets" in the request body`},
		{"/ping", `{"targets":["localhost"],"pad":1,"pad":2}`, `duplicate key "pad" in the request body`},
		{"/service", `{"targets":["localhost"],"name":"nginx","state":0,"state":2}`, `duplicate key "state" in the request body`},
		{"/deploy", `{"targets":["localhost"],"role":"web","extra_vars":{"port":80,"port":8080}}`, `extra_vars: duplicate key "port"`},
		{"/deploy", `{"targets":["localhost"],"role":"web","extra_vars":{"a":{"b":[1,{"k":1,"k":2}]}}}`, `extra_vars.a.b[1]: duplicate key "k"`},
		{"/deploy", `{"targets":["localhost"],"role":"web","unknown":[[{}],{"x":{"y":1,"y":1}}]}`, `unknown[1].x: duplicate key "y"`},
		{"/tasks", `{"targets":["localhost"],"tasktype":"echo","taskopts":{"cmd":"true","cmd":"echo pwned"}}`, `taskopts: duplicate key "cmd"`},

		{"/ping", `{"targets":["localhost"]}]`, "request body must hold a single JSON object"},
		{"/ping", `{"targets":["localhost"]}}`, "request body must hold a single JSON object"},
	}
	for _, c := range cases {
		r := s.post(c.path, c.body)
		if assert.Equal(t, http.StatusBadRequest, r.status, c.body+": "+string(r.body)) {
			assert.Contains(t, r.message(t), c.msg, c.body)
		}
	}
	var ids []string
	s.get("/jobs").json(t, &ids)
	assert.Empty(t, ids, "no refused body stored a job")

	// The exact name wins over a case variant, in either order, and what
	// is stored is what the exact name said.
	for _, body := range []string{
		`{"targets":["localhost"],"CMD":"echo upper","cmd":"echo exact","Cmd":"echo mixed"}`,
		`{"Cmd":"echo mixed","cmd":"echo exact","targets":["localhost"],"CMD":"echo upper"}`,
	} {
		jid := s.submit("/execute", body)
		job := s.waitJob(jid)
		require.Equal(t, exe.JobDone, job.State, body)
		assert.Equal(t, "echo exact", job.Execute.Cmd, body)
		r := s.get("/jobs/" + jid + "?outputs=1")
		var out struct {
			ReturnData map[string][]map[string]any `json:"return_data"`
		}
		require.NoError(t, json.Unmarshal(r.body, &out))
		assert.Equal(t, "exact\n", out.ReturnData["localhost"][0]["stdout"], body)
	}
}

// TestQueryThatDoesNotParse: url.ParseQuery drops a pair holding an
// unencoded ';' or a bad %-escape; the 400 names that cause instead of
// answering for a request without the pair, and nothing runs.
func TestQueryThatDoesNotParse(t *testing.T) {
	s := newServer(t, serverOpts{})
	canary := filepath.Join(t.TempDir(), "canary")
	touch := "cmd=touch%20" + url.QueryEscape(canary)
	cases := []struct {
		path, msg string
	}{
		{"/execute?target=localhost&cmd=echo%20a;echo%20b", `query: unencoded ";" in "cmd=echo%20a;echo%20b": encode it as %3B`},
		{"/execute?target=localhost;" + touch, `query: unencoded ";" in "target=localhost;cmd=touch%20`},
		{"/execute?" + touch + "&target=localhost&target=ghost;x", `query: unencoded ";" in "target=ghost;x"`},
		{"/target?pattern=web;db", `query: unencoded ";" in "pattern=web;db"`},
		{"/jobs?detail=1;outputs=1", `query: unencoded ";"`},
		{"/execute?target=localhost&cmd=%zz", `query: invalid URL escape "%zz" in "cmd=%zz": encode "%" as %25`},
		{"/execute?target=localhost&" + touch + "&x%=1", `query: invalid URL escape "%" in "x%=1"`},
		{"/execute?target=localhost&" + touch + "&cmd=true", "cmd: given 2 times; give it once"},
		{"/service?target=localhost&name=nginx&state=0&state=1", "state: given 2 times"},
		{"/service?target=localhost&name=nginx&name=-x&state=0", "name: given 2 times"},
		{"/jobs?detail=1&detail=0", "detail: given 2 times"},
		{"/target?pattern=*&pattern=web", "pattern: given 2 times"},
	}
	for _, c := range cases {
		r := s.get(c.path)
		if assert.Equal(t, http.StatusBadRequest, r.status, c.path+": "+string(r.body)) {
			assert.Contains(t, r.message(t), c.msg, c.path)
		}
	}
	r := s.post("/execute?target=localhost;x", `{"targets":["localhost"],"cmd":"touch `+canary+`"}`)
	assert.Equal(t, http.StatusBadRequest, r.status, "every endpoint: "+string(r.body))
	var ids []string
	s.get("/jobs").json(t, &ids)
	assert.Empty(t, ids)
	assert.NoFileExists(t, canary, "nothing ran")

	// Encoded, the same characters are data.
	r = s.get("/execute?target=localhost&cmd=echo%20a%3Becho%20b%25")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var out map[string]map[string]any
	r.json(t, &out)
	assert.Equal(t, "a\nb%\n", out["localhost"]["stdout"])
	assert.Equal(t, http.StatusOK, s.get("/ping?target=localhost&target=localhost&targets=localhost").status, "target repeats")
}

// A body is read exactly as sent: bytes that are not UTF-8 (which
// encoding/json would replace with U+FFFD) and a charset other than UTF-8
// are refused, naming the cause.
func TestBodyMustBeUTF8(t *testing.T) {
	s := newServer(t, serverOpts{})
	r := s.post("/execute", "{\"targets\":[\"localhost\"],\"cmd\":\"echo caf\xe9\"}")
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Equal(t, "request body is not valid UTF-8 (at byte 40)", r.message(t))
	r = s.do("POST", "/execute", "application/json; charset=iso-8859-1", `{"targets":["localhost"],"cmd":"true"}`)
	assert.Equal(t, http.StatusUnsupportedMediaType, r.status, string(r.body))
	assert.Equal(t, `Content-Type must be application/json in UTF-8, not charset "iso-8859-1"`, r.message(t))
	// A lone UTF-16 surrogate escape is no character: encoding/json would
	// run the command with U+FFFD in its place.
	for body, msg := range map[string]string{
		`{"targets":["localhost"],"cmd":"echo \ud800"}`:                          `cmd: \ud800 is a lone UTF-16 surrogate, not a character`,
		`{"targets":["localhost"],"cmd":"echo \udc00\ud83d"}`:                    `cmd: \udc00 is a lone UTF-16 surrogate, not a character`,
		`{"targets":["localhost","x\ud83dy"],"cmd":"true"}`:                      `targets[1]: \ud83d is a lone UTF-16 surrogate, not a character`,
		`{"targets":["localhost"],"role":"r","extra_vars":{"a":{"b":"\udfff"}}}`: `extra_vars.a.b: \udfff is a lone UTF-16 surrogate, not a character`,
		`{"targets":["localhost"],"role":"r","extra_vars":{"\ud800":1}}`:         `extra_vars: a key: \ud800 is a lone UTF-16 surrogate, not a character`,
	} {
		path := "/execute"
		if strings.Contains(body, "role") {
			path = "/deploy"
		}
		r = s.post(path, body)
		assert.Equal(t, http.StatusBadRequest, r.status, body)
		assert.Equal(t, msg, r.message(t), body)
	}
	var ids []string
	s.get("/jobs").json(t, &ids)
	assert.Empty(t, ids)
	// A pair is a character; an escaped backslash before "u" is no escape.
	r = s.post("/execute", `{"targets":["localhost"],"cmd":"echo \ud83d\ude00 \\ud800"}`)
	assert.Equal(t, http.StatusCreated, r.status, string(r.body))
	for _, ct := range []string{"application/json; charset=utf-8", "application/json; charset=UTF-8", "application/json"} {
		r = s.do("POST", "/execute", ct, `{"targets":["localhost"],"cmd":"echo café"}`)
		assert.Equal(t, http.StatusCreated, r.status, ct)
	}
}
