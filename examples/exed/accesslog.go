package main

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// accessLog writes one line per request in the common log format plus the
// duration. The query string is kept (it names targets and commands); the
// Authorization header never is.
func accessLog(w io.Writer, next http.Handler) http.Handler {
	var mu sync.Mutex
	var line []byte // under mu
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: rw, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		line = appendAccessLine(line[:0], r.RemoteAddr, start, r.Method, r.URL.RequestURI(), r.Proto, rec.status, rec.bytes, took)
		_, _ = w.Write(line)
	})
}

// appendAccessLine appends the access log line of a request, as
// fmt.Sprintf("%s - - [%s] %q %d %d %.3fs\n") with the start in the
// common log format's time layout and the request line (method, URI and
// protocol, a space between each) writes it, without fmt's reflection
// and without making the request line a string first.
func appendAccessLine(b []byte, remote string, start time.Time, method, uri, proto string, status int, size int64, took time.Duration) []byte {
	b = append(append(b, remote...), " - - ["...)
	b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = append(appendQuoted(b, method), ' ')
	b = append(appendQuoted(b, uri), ' ')
	b = append(appendQuoted(b, proto), '"')
	b = strconv.AppendInt(append(b, ' '), int64(status), 10)
	b = strconv.AppendInt(append(b, ' '), size, 10)
	b = strconv.AppendFloat(append(b, ' '), took.Seconds(), 'f', 3, 64)
	return append(b, "s\n"...)
}

// appendQuoted appends s as strconv.Quote writes it, without the quotes.
// Quoting three strings so, with a space between each, writes what
// quoting them joined does: Quote escapes rune by rune, and a space never
// continues a UTF-8 sequence, so no rune spans two of them.
func appendQuoted(b []byte, s string) []byte {
	n := len(b)
	b = strconv.AppendQuote(b, s)
	copy(b[n:], b[n+1:len(b)-1])
	return b[:len(b)-2]
}

// recorder remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the real writer, so follow streams can
// still flush and set deadlines through it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
