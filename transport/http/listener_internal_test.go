package http

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Only net/http's own canned answers are rewritten: a handler's answers,
// whatever their status, pass through as written.
func TestRewriteOnlyCannedErrors(t *testing.T) {
	for _, p := range []string{
		"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nDate: x\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nDate: x\r\n\r\n400 Bad Request",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nline one\r\nline two",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n200 OK",
		"HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nDate: x\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nX-Other: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 417 Expectation Failed\r\nDate: x\r\nContent-Length: 0\r\n\r\n",
		"body bytes: HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request",
		"",
	} {
		_, ok := rewriteCannedError([]byte(p))
		assert.False(t, ok, "%q", p)
	}
	out, ok := rewriteCannedError([]byte("HTTP/1.1 400 Bad Request: invalid header name\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: invalid header name"))
	assert.True(t, ok)
	assert.Equal(t, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 58\r\n\r\n"+
		`{"message":"malformed HTTP request: invalid header name"}`+"\n", string(out))
}
