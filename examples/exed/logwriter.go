package main

import (
	"io"
	"sync"
	"time"
)

const (
	// logFlushInterval bounds how long a line of the server log or the
	// access log waits: a line that comes when the log's last write is
	// older than this is written at once, and the lines that come sooner
	// are written together, one write(2) for all of them, when this much
	// time has passed since that last write. Under load that is at most a
	// hundred writes a second per log instead of one per line, which cut
	// 12% of the CPU per job on the memory store at 5,000 jobs/s
	// (bench/README.md). A quiet server's lines go out as they come.
	logFlushInterval = 10 * time.Millisecond
	// logBufferBytes is written at once, without waiting for the
	// interval, as nginx's access_log buffer= is.
	logBufferBytes = 64 << 10
)

// logWriter writes the lines of a log to w, those that come close
// together in one write (see logFlushInterval). Each Write is one line,
// or several whole ones, as hclog and the access log write them; lines
// keep their order. A line kept for later is reported written: its
// error, if its write fails, goes nowhere, as a log line's always did
// (hclog and the access log drop it). Close writes what is kept; Flush
// does so and keeps going. What a crash ends (SIGKILL, a panic) loses
// the lines of its last interval at most.
type logWriter struct {
	w        io.Writer
	interval time.Duration

	mu     sync.Mutex
	buf    []byte
	last   time.Time   // when the last write to w began
	timer  *time.Timer // writes buf once armed; nil until first needed
	armed  bool
	closed bool
}

func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	return &logWriter{w: w, interval: interval}
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
	_, _ = l.w.Write(l.buf)
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
