package http_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawServer serves the API on an http.Server whose listener is
// JSONErrorListener, with a small MaxHeaderBytes.
func rawServer(t *testing.T) string {
	t.Helper()
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(openapitest.Handler(t, exehttp.New(eng, exehttp.Options{}), ""))
	ts.Listener = exehttp.JSONErrorListener(ts.Listener)
	ts.Config.MaxHeaderBytes = 1 << 10
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		_ = eng.Shutdown(t.Context())
	})
	return ts.Listener.Addr().String()
}

// rawAnswer is one answer read off a raw connection.
type rawAnswer struct {
	status int
	header http.Header
	body   string
}

// sendRaw writes request bytes on a new connection and reads the answers
// until the server closes it (or n answers have arrived).
func sendRaw(t *testing.T, addr, request string, n int) []rawAnswer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var out []rawAnswer
	for len(out) < n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		res.Body.Close()
		out = append(out, rawAnswer{status: res.StatusCode, header: res.Header, body: string(b)})
	}
	return out
}

// jsonMessage checks that an answer is exactly {"message": ...} JSON.
func jsonMessage(t *testing.T, a rawAnswer) string {
	t.Helper()
	assert.Equal(t, "application/json", a.header.Get("Content-Type"), a.body)
	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(a.body), &m), a.body)
	require.Len(t, m, 1, a.body)
	return m["message"]
}

// TestServerOwnErrorsAreJSON sends what net/http answers by itself,
// before any handler runs, and checks each answer is {"message"} JSON
// with net/http's status code.
func TestServerOwnErrorsAreJSON(t *testing.T) {
	addr := rawServer(t)
	cases := []struct {
		name, request string
		status        int
		msg           string
	}{
		{"HTTP version", "GET /ping?target=localhost HTTP/9.9\r\nHost: x\r\n\r\n", 505, "unsupported HTTP version: unsupported protocol version"},
		{"no Host", "GET /ping?target=localhost HTTP/1.1\r\n\r\n", 400, "malformed HTTP request: missing required Host header"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "malformed HTTP request"},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "malformed HTTP request: malformed Host header"},
		{"bad header name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400, "malformed HTTP request"},
		{"bad header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, "malformed HTTP request"},
		{"request line", "garbage\r\n\r\n", 400, "malformed HTTP request"},
		{"header line", "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n", 400, "malformed HTTP request"},
		{"transfer encoding", "POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not implemented: unsupported transfer encoding"},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", 16<<10) + "\r\n\r\n", 431, "request header fields are too large"},
		{"Expect", "POST /ping HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}", 417, "unsupported Expect header: only 100-continue is supported"},
		// What http.ServeMux answers by itself.
		{"target *", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, `request target "*" is only for OPTIONS`},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, `request target "*" is only for OPTIONS`},
		{"CONNECT", "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", 405, "method CONNECT is not allowed: this is not a proxy"},
	}
	// "a" stands for the server's own address, which the Host check of
	// every request accepts.
	host := func(request string) string {
		request = strings.Replace(request, "CONNECT a ", "CONNECT "+addr+" ", 1)
		return strings.ReplaceAll(request, "Host: a\r\n", "Host: "+addr+"\r\n")
	}
	for _, c := range cases {
		got := sendRaw(t, addr, host(c.request), 1)
		require.Len(t, got, 1, c.name)
		assert.Equal(t, c.status, got[0].status, c.name+": "+got[0].body)
		assert.Equal(t, c.msg, jsonMessage(t, got[0]), c.name)
	}

	// A connection that served requests and then sends garbage gets the
	// answers, then the JSON 400; the API's own answers are untouched.
	got := sendRaw(t, addr, host("GET /ping?target=localhost HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /execute?target=localhost HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /ping HTTP/7.0\r\nHost: a\r\n\r\n"), 3)
	require.Len(t, got, 3)
	assert.Equal(t, 200, got[0].status)
	assert.JSONEq(t, `{"localhost":{"status":1}}`, got[0].body)
	assert.Equal(t, 400, got[1].status)
	assert.Equal(t, "cmd: a command is required", jsonMessage(t, got[1]))
	assert.Equal(t, 505, got[2].status)
	assert.Equal(t, "unsupported HTTP version: unsupported protocol version", jsonMessage(t, got[2]))
}
