package main

import (
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

const (
	// defaultLogFlushInterval bounds how long a line of the server log or
	// the access log waits: a line written when nothing was written to
	// the log for this long goes out at once, and the lines that come
	// sooner go out together when this much time has passed since that
	// last write (in one write(2) to a regular file, in few to a pipe or
	// socket: see pipeBuf). Under load that is about a hundred writes a
	// second per log instead of one per line, which cut 12% of the CPU
	// per job on the memory store at 5,000 jobs/s (bench/README.md). A
	// quiet server's lines go out as they come.
	defaultLogFlushInterval = 10 * time.Millisecond
	// logBufferBytes is written at once, without waiting for the
	// interval, as nginx's access_log buffer= is.
	logBufferBytes = 64 << 10
	// pipeBuf is PIPE_BUF on Linux: a write(2) of at most this much to a
	// pipe is never split nor mixed with another's (pipe(7)). On a pipe,
	// a socket or a terminal, which the two logs may share (2>&1, the
	// journal), lines waiting are written in pieces this big at most,
	// cut at line ends, so that the other log's writes fall between
	// whole lines, as when every line was a write of its own.
	pipeBuf = 4096
)

// logFlushInterval is a variable for the tests, which set it long to
// control when kept lines are written.
var logFlushInterval = defaultLogFlushInterval

// logWriter writes the lines of a log to w, those that come close
// together in one write to a file, in few to a pipe (see
// defaultLogFlushInterval and pipeBuf). Each Write is one line,
// or several whole ones, as hclog and the access log write them; lines
// keep their order. A line kept for later is reported written: its
// error, if its write fails, goes nowhere, as a log line's always did
// (hclog and the access log drop it). Close writes what is kept; Flush
// does so and keeps going. What a crash ends (SIGKILL, a panic) loses
// the lines of its last interval at most.
type logWriter struct {
	w        io.Writer
	interval time.Duration
	// piece bounds one write of kept lines (pipeBuf), 0 for none: a
	// regular file opened to append takes each write whole.
	piece int

	mu     sync.Mutex
	buf    []byte
	last   time.Time   // when the last write to w began
	timer  *time.Timer // writes buf once armed; nil until first needed
	armed  bool
	closed bool
}

// newLogWriter writes to w. Kept lines go out in one write when w is a
// regular file (an *os.File or a logFile), else in pieces of pipeBuf.
func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	l := &logWriter{w: w, interval: interval, piece: pipeBuf}
	var f *os.File
	switch w := w.(type) {
	case *os.File:
		f = w
	case *logFile:
		f = w.f
	}
	if f != nil {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			l.piece = 0
		}
	}
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.closed || len(l.buf) == 0 && now.Sub(l.last) >= l.interval {
		l.last = now
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	if len(l.buf) >= logBufferBytes {
		l.flushLocked(now)
		return len(p), nil
	}
	if !l.armed {
		wait := l.interval - now.Sub(l.last)
		if l.timer == nil {
			l.timer = time.AfterFunc(wait, l.timed)
		} else {
			l.timer.Reset(wait)
		}
		l.armed = true
	}
	return len(p), nil
}

// timed is the timer's write of the kept lines.
func (l *logWriter) timed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = false
	l.flushLocked(time.Now())
}

func (l *logWriter) flushLocked(now time.Time) {
	if len(l.buf) == 0 {
		return
	}
	l.last = now
	for rest := l.buf; len(rest) > 0; {
		n := len(rest)
		if l.piece > 0 && n > l.piece {
			// Up to the last line end within a piece; a line longer than
			// a piece goes alone, as it did before.
			if i := bytes.LastIndexByte(rest[:l.piece], '\n'); i >= 0 {
				n = i + 1
			} else if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				n = i + 1
			}
		}
		_, _ = l.w.Write(rest[:n])
		rest = rest[n:]
	}
	// A buffer grown by a burst goes back to the heap rather than stay.
	if cap(l.buf) > 2*logBufferBytes {
		l.buf = nil
	} else {
		l.buf = l.buf[:0]
	}
}

// Flush writes the lines kept so far, before what the caller writes to
// the same destination by another way (exed's last words on stderr).
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(time.Now())
}

// Close writes the lines kept; later lines are written as they come. It
// does not close w.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.armed = false
	}
	l.flushLocked(time.Now())
	l.closed = true
	return nil
}
