package sshnative

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
)

// DefaultOutputCap is the default limit on each captured output field.
const DefaultOutputCap = 1 << 20

// capped keeps the first limit bytes written to it and drops the rest,
// remembering that it did; it never fails a write, so the command is never
// blocked or killed for writing too much.
type capped struct {
	mu        sync.Mutex // SSH sessions write from their own goroutines
	limit     int
	buf       []byte
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf)+len(p) > c.limit {
		c.truncated = true
	}
	// Up to utf8.UTFMax-1 bytes past the cap are kept: they tell String
	// whether the cap falls inside a character.
	if room := c.limit + utf8.UTFMax - 1 - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String is the output as text: valid UTF-8 (exe.ToValidUTF8), so that
// everything built from it (messages, facts) is text too, then cut to the
// cap without cutting a character in two (exe.CapUTF8): the field, not
// the raw bytes, is at most the cap.
func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, _ := exe.CapUTF8(string(c.buf), c.limit)
	return s
}

// Truncated reports whether String lacks some of the output: bytes past
// the cap were dropped, or their conversion made the text longer than it.
func (c *capped) Truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, cut := exe.CapUTF8(string(c.buf), c.limit)
	return c.truncated || cut
}

// pidFilter passes a remote command's stderr on to next, less the line
// that reports the command's pid (see pidMarker), which it delivers on
// pid. Lines before it (a login shell's rc files may print some) pass
// through; after maxPIDScan bytes without it, everything does.
type pidFilter struct {
	next io.Writer
	pid  chan int

	mu    sync.Mutex
	buf   []byte
	found bool
}

const maxPIDScan = 4 << 10

func newPIDFilter(next io.Writer) *pidFilter {
	return &pidFilter{next: next, pid: make(chan int, 1)}
}

func (f *pidFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.found {
		return f.next.Write(p)
	}
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			if len(f.buf) > maxPIDScan {
				f.found = true
				_, _ = f.next.Write(f.buf)
				f.buf = nil
			}
			return len(p), nil
		}
		line := f.buf[:i]
		if rest, ok := bytes.CutPrefix(line, []byte(pidMarker)); ok {
			if pid, err := strconv.Atoi(string(rest)); err == nil && pid > 1 {
				f.found = true
				f.pid <- pid
				if tail := f.buf[i+1:]; len(tail) > 0 {
					_, _ = f.next.Write(tail)
				}
				f.buf = nil
				return len(p), nil
			}
		}
		_, _ = f.next.Write(f.buf[:i+1])
		f.buf = f.buf[i+1:]
	}
}

// flush passes on what is still held: output that ended without a newline
// before the pid line came.
func (f *pidFilter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		_, _ = f.next.Write(f.buf)
		f.buf = nil
	}
}
