package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// An access log line is what fmt wrote before, byte for byte.
func TestAppendAccessLine(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("x", -(3*3600 + 30*60)), time.FixedZone("y", 5*3600+45*60)}
	for i, c := range []struct {
		remote, method, uri, proto string
		status                     int
		size                       int64
		took                       time.Duration
	}{
		{"127.0.0.1:5000", "GET", "/jobs/abc", "HTTP/1.1", 200, 415, 1234567 * time.Nanosecond},
		{"[::1]:80", "POST", "/execute?cmd=echo+%22hi%22", "HTTP/1.1", 201, 0, 0},
		{"@", "GET", "/ping?target=\\\"\x01é\u2028\xff", "HTTP/2.0", 499, 1 << 40, 95*time.Minute + 999500*time.Microsecond},
		{"", "", "", "", 0, -1, 2500 * time.Microsecond},
		// A UTF-8 sequence cut at the end of one part and continued at
		// the start of the next: the parts do not make a rune joined.
		{"x", "G\xc3", "\xa9/\xe2\x80", "\xa8\"", 200, 1, time.Second},
	} {
		start := time.Date(2026, 11, 30, 9, 5, 7, 123, zones[i%len(zones)])
		want := fmt.Sprintf("%s - - [%s] %q %d %d %.3fs\n", c.remote, start.Format("02/Jan/2006:15:04:05 -0700"),
			c.method+" "+c.uri+" "+c.proto, c.status, c.size, c.took.Seconds())
		assert.Equal(t, want, string(appendAccessLine([]byte("old"), c.remote, start, c.method, c.uri, c.proto, c.status, c.size, c.took))[3:])
	}
}

// BenchmarkAccessLog is the access log's work for one request, around a
// handler that answers a short body.
func BenchmarkAccessLog(b *testing.B) {
	h := accessLog(io.Discard, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("{}\n"))
	}))
	r := httptest.NewRequest("GET", "/jobs/0b6c1c1e-8f0e-4c53-9d4a-4a3c3f1f2b7e", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
