package openapitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func exchange(method, target, body string, status int, contentType, answer string) Exchange {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if status == http.StatusCreated {
		h.Set("Location", "/jobs/x")
	}
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, HEAD")
	}
	return Exchange{Request: r, Body: []byte(body), Status: status, Header: h, Answer: []byte(answer)}
}

const job = `{"jid":"j","state":1,"error":"","startat":1,"endat":0,"operate":"ping","operate_args":{},"targets":["a"],"user":"","return_data":{}}`

// The checker passes what the document describes and names each kind of
// disagreement: without this, a checker that lets everything through
// would look like an API that agrees with its document.
func TestCheckerCatchesDisagreements(t *testing.T) {
	c, err := New("")
	require.NoError(t, err)
	const js, nd, es = "application/json", "application/x-ndjson", "text/event-stream"
	ok := []Exchange{
		exchange("GET", "/ping?target=a", "", 200, js, `{"a":{"status":1}}`),
		exchange("GET", "/ping?target=a", "", 404, js, `{"message":"no hosts match that target: a"}`),
		exchange("POST", "/execute", `{"targets":["a"],"cmd":"true"}`, 201, js, `{"jid":"j"}`),
		exchange("POST", "/execute", `{"targets":["a"]}`, 400, js, `{"message":"cmd: a command is required"}`),
		exchange("GET", "/jobs/j?follow=1", "", 200, nd, job+"\n"+`{"a":{"status":1}}`+"\n"+job+"\n"),
		exchange("GET", "/jobs/j?follow=1", "", 200, es, "retry: 2000\nevent: job\ndata: "+job+"\n\n: keepalive\n\nid: 3\nevent: host\ndata: {\"a\":{\"status\":1}}\n\nevent: done\ndata: "+job+"\n\n"),
		exchange("DELETE", "/jobs/j", "", 204, "", ""),
		exchange("GET", "/nowhere", "", 404, js, `{"message":"no such endpoint: /nowhere"}`),
		exchange("PUT", "/ping", "", 405, js, `{"message":"method PUT is not allowed here"}`),
		exchange("HEAD", "/ping?target=a", "", 405, js, ""), // a HEAD that would run the operation
	}
	for _, ex := range ok {
		assert.NoError(t, c.Check(ex), "%s %s", ex.Request.Method, ex.Request.URL)
	}
	bad := map[string]Exchange{
		"wrong type in a body":        exchange("GET", "/ping?target=a", "", 200, js, `{"a":{"status":"1"}}`),
		"status not in the enum":      exchange("GET", "/ping?target=a", "", 200, js, `{"a":{"status":9}}`),
		"undocumented status":         exchange("GET", "/ping?target=a", "", 418, js, `{"message":"teapot"}`),
		"error body not {message}":    exchange("GET", "/ping?target=a", "", 404, js, `{"error":"no"}`),
		"undocumented content type":   exchange("GET", "/ping?target=a", "", 200, "text/plain", `hi`),
		"accepted what it refuses":    exchange("POST", "/execute", `{"targets":["a"],"cmd":7}`, 201, js, `{"jid":"j"}`),
		"undocumented job field":      exchange("GET", "/jobs/j", "", 200, js, strings.Replace(job, `"jid"`, `"extra":1,"jid"`, 1)),
		"body on a 204":               exchange("DELETE", "/jobs/j", "", 204, js, `{}`),
		"NDJSON line off schema":      exchange("GET", "/jobs/j?follow=1", "", 200, nd, job+"\n"+`{"a":{"status":1},"b":{"status":1}}`+"\n"),
		"NDJSON without the job":      exchange("GET", "/jobs/j?follow=1", "", 200, nd, `{"a":{"status":1}}`+"\n"),
		"unended NDJSON line":         exchange("GET", "/jobs/j?follow=1", "", 200, nd, job),
		"host event without an id":    exchange("GET", "/jobs/j?follow=1", "", 200, es, "retry: 2000\nevent: job\ndata: "+job+"\n\nevent: host\ndata: {\"a\":{\"status\":1}}\n\n"),
		"ids that go back":            exchange("GET", "/jobs/j?follow=1", "", 200, es, "retry: 2000\nevent: job\ndata: "+job+"\n\nid: 2\nevent: host\ndata: {\"a\":{\"status\":1}}\n\nid: 2\nevent: host\ndata: {\"a\":{\"status\":1}}\n\n"),
		"an id on the done event":     exchange("GET", "/jobs/j?follow=1", "", 200, es, "retry: 2000\nevent: job\ndata: "+job+"\n\nid: 4\nevent: done\ndata: "+job+"\n\n"),
		"an undocumented event":       exchange("GET", "/jobs/j?follow=1", "", 200, es, "retry: 2000\nevent: job\ndata: "+job+"\n\nevent: progress\ndata: {}\n\n"),
		"no retry first":              exchange("GET", "/jobs/j?follow=1", "", 200, es, "event: job\ndata: "+job+"\n\n"),
		"405 without Allow":           {Request: httptest.NewRequest("PUT", "/ping", nil), Status: 405, Header: http.Header{"Content-Type": {js}}, Answer: []byte(`{"message":"no"}`)},
		"HEAD 405 without Allow":      {Request: httptest.NewRequest("HEAD", "/ping?target=a", nil), Status: 405, Header: http.Header{"Content-Type": {js}}},
		"200 for an unknown path":     exchange("GET", "/nowhere", "", 200, js, `{}`),
		"text error for unknown path": exchange("GET", "/nowhere", "", 404, "text/plain", "404 page not found"),
	}
	for name, ex := range bad {
		assert.Error(t, c.Check(ex), name)
	}
}

// Under a prefix, only the prefix's paths are the API's.
func TestCheckerPrefix(t *testing.T) {
	c, err := New("/exe")
	require.NoError(t, err)
	assert.NoError(t, c.Check(exchange("GET", "/exe/ping?target=a", "", 200, "application/json", `{"a":{"status":1}}`)))
	assert.Error(t, c.Check(exchange("GET", "/exe/ping?target=a", "", 200, "application/json", `{"a":{}}`)))
	assert.NoError(t, c.Check(exchange("GET", "/exempt", "", 200, "text/html", `<p>the embedder's own page`)))
	assert.NoError(t, c.Check(exchange("GET", "/", "", 200, "text/html", `<p>the embedder's own page`)))
}

func TestParseEvents(t *testing.T) {
	evs, err := ParseEvents([]byte("retry: 2000\r\nevent: job\r\ndata: a\r\ndata:b\r\n\r\n: c\n\nid: 7\ndata: x\r\rdata: cut"))
	require.NoError(t, err)
	assert.Equal(t, []Event{{Event: "job", Data: "a\nb", Retry: 2000}, {Event: "message", Data: "x", ID: "7"}}, evs)
	_, err = ParseEvents([]byte("colour: red\n\n"))
	assert.Error(t, err)
}
