package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writes records every Write it is given, as one chunk each, and signals
// each one on wrote.
type writes struct {
	mu     sync.Mutex
	chunks []string
	wrote  chan struct{}
}

func newWrites() *writes { return &writes{wrote: make(chan struct{}, 1024)} }

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.chunks = append(w.chunks, string(p))
	w.mu.Unlock()
	w.wrote <- struct{}{}
	return len(p), nil
}

func (w *writes) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.chunks...)
}

// A line that comes to a quiet log is written before Write returns; the
// lines that come within the interval of that write wait, and go out in
// order, in one write, when Flush (here) or the interval asks.
func TestLogWriterWritesLinesCloseTogetherInOneWrite(t *testing.T) {
	w := newWrites()
	lw := newLogWriter(w, time.Hour) // the timer never writes here
	_, err := lw.Write([]byte("first\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"first\n"}, w.got(), "a line to a quiet log is written at once")
	var want strings.Builder
	for i := range 100 {
		line := fmt.Sprintf("line %d\n", i)
		n, err := lw.Write([]byte(line))
		require.NoError(t, err)
		assert.Equal(t, len(line), n)
		want.WriteString(line)
	}
	assert.Equal(t, []string{"first\n"}, w.got(), "lines within the interval wait")
	lw.Flush()
	assert.Equal(t, []string{"first\n", want.String()}, w.got(), "and go out together, in order")
	lw.Flush()
	assert.Len(t, w.got(), 2, "a flush with nothing kept writes nothing")
}

// The kept lines are written by the interval's timer (called here as it
// would be), together, with no other line to push them.
func TestLogWriterTimerWritesWhatWaits(t *testing.T) {
	w := newWrites()
	lw := newLogWriter(w, time.Hour)
	_, _ = lw.Write([]byte("a\n"))
	_, _ = lw.Write([]byte("b\n"))
	_, _ = lw.Write([]byte("c\n"))
	require.Equal(t, []string{"a\n"}, w.got())
	lw.timed()
	assert.Equal(t, []string{"a\n", "b\nc\n"}, w.got())
	// The timer is armed again for the next lines that come too soon.
	_, _ = lw.Write([]byte("d\n"))
	assert.Len(t, w.got(), 2)
	lw.timed()
	assert.Equal(t, []string{"a\n", "b\nc\n", "d\n"}, w.got())
}

// The real timer writes the kept lines, whatever the machine's pace:
// every line arrives, in order, without a Flush or Close.
func TestLogWriterWritesWhatWaitsWhenTheIntervalEnds(t *testing.T) {
	w := newWrites()
	lw := newLogWriter(w, 50*time.Millisecond)
	defer lw.Close()
	for _, line := range []string{"a\n", "b\n", "c\n"} {
		_, _ = lw.Write([]byte(line))
	}
	for strings.Join(w.got(), "") != "a\nb\nc\n" {
		select {
		case <-w.wrote:
		case <-time.After(10 * time.Second):
			t.Fatalf("the kept lines were never written: %q", w.got())
		}
	}
}

// On a pipe, a socket or a terminal (here a writer that is no file), kept
// lines go out in writes of at most PIPE_BUF, each of whole lines, so
// that another writer's lines (the other log, on 2>&1) never land inside
// one; a line longer than that goes alone. A regular file takes them in
// one write.
func TestLogWriterWritesWholeLinesOfPipeBufAtMostToAPipe(t *testing.T) {
	w := newWrites()
	lw := newLogWriter(w, time.Hour)
	_, _ = lw.Write([]byte("first\n"))
	var want strings.Builder
	for i := range 300 {
		line := fmt.Sprintf("line %d %s\n", i, strings.Repeat("z", i%90))
		if i == 150 {
			line = strings.Repeat("L", 3*pipeBuf) + "\n"
		}
		_, _ = lw.Write([]byte(line))
		want.WriteString(line)
	}
	lw.Flush()
	got := w.got()[1:]
	require.Greater(t, len(got), 3)
	for _, chunk := range got {
		assert.True(t, strings.HasSuffix(chunk, "\n"), "a write ends inside a line: ...%q", chunk[max(0, len(chunk)-20):])
		if len(chunk) > pipeBuf {
			assert.Equal(t, 1, strings.Count(chunk, "\n"), "a write over PIPE_BUF holds more than the one long line")
		}
	}
	assert.Equal(t, want.String(), strings.Join(got, ""))

	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	assert.Zero(t, newLogWriter(f, time.Hour).piece, "a regular file takes the lines in one write")
	r, pw, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer pw.Close()
	assert.Equal(t, pipeBuf, newLogWriter(pw, time.Hour).piece, "a pipe takes them in pieces")
}

// A burst bigger than the buffer is written as soon as the buffer is
// full, not held for the interval.
func TestLogWriterWritesAFullBufferAtOnce(t *testing.T) {
	w := newWrites()
	lw := newLogWriter(w, time.Hour)
	_, _ = lw.Write([]byte("first\n"))
	line := strings.Repeat("x", 1023) + "\n"
	for range logBufferBytes / len(line) {
		_, _ = lw.Write([]byte(line))
	}
	got := w.got()
	require.Greater(t, len(got), 1, "the buffer's bytes went out once it was full")
	assert.Len(t, strings.Join(got[1:], ""), logBufferBytes)
}

// Close writes what waits; a line after it (the last ones of a shutdown)
// is written at once.
func TestLogWriterCloseWritesWhatWaits(t *testing.T) {
	w := newWrites()
	lw := newLogWriter(w, time.Hour)
	_, _ = lw.Write([]byte("a\n"))
	_, _ = lw.Write([]byte("b\n"))
	require.NoError(t, lw.Close())
	assert.Equal(t, []string{"a\n", "b\n"}, w.got())
	_, _ = lw.Write([]byte("c\n"))
	assert.Equal(t, []string{"a\n", "b\n", "c\n"}, w.got())
}

// Lines of many goroutines at once reach the file whole, each goroutine's
// in its order, none lost, once the writer is closed.
func TestLogWriterKeepsEveryLineWholeAndInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := openLogFile(path, 0o600)
	require.NoError(t, err)
	lw := newLogWriter(f, time.Millisecond)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				_, _ = fmt.Fprintf(lw, "writer=%d line=%d pad=%s|\n", g, i, strings.Repeat("y", i%200))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, lw.Close())
	require.NoError(t, f.Close())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	next := make([]int, writers)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	n := 0
	for sc.Scan() {
		var g, i int
		head, pad, ok := strings.Cut(sc.Text(), " pad=")
		require.True(t, ok, "line %d torn: %q", n, sc.Text())
		_, err := fmt.Sscanf(head, "writer=%d line=%d", &g, &i)
		require.NoError(t, err, "line %d: %q", n, sc.Text())
		require.Equal(t, next[g], i, "writer %d's lines out of order", g)
		require.Equal(t, strings.Repeat("y", i%200)+"|", pad, "line %q torn", sc.Text())
		next[g]++
		n++
	}
	assert.Equal(t, writers*lines, n)
}

// exed's last words on a stderr it shares with its log come after the
// log's lines, not before those still kept.
func TestFailWritesTheLogFirst(t *testing.T) {
	longInterval(t)
	w := newWrites()
	p, code := startProcess("exed", "exed", config.Default(), []string{"first warning", "second warning"}, w)
	require.NotNil(t, p, "exit %d", code)
	defer p.close()
	p.log.Warn("third warning")
	p.fail(exitUsage, "cannot go on")
	out := strings.Join(w.got(), "")
	i2, i3, iFail := strings.Index(out, "second warning"), strings.Index(out, "third warning"), strings.Index(out, "exed: cannot go on")
	require.True(t, i2 >= 0 && i3 >= 0 && iFail >= 0, "%s", out)
	assert.Less(t, i2, iFail, "the log's lines came after the failure: %s", out)
	assert.Less(t, i3, iFail, "the log's lines came after the failure: %s", out)
}

// Every line of the server log is in its file once the process has
// closed what it opened: the writer writes what waits before the file is
// closed.
func TestLogLinesKeptUntilTheProcessEndsAreWritten(t *testing.T) {
	longInterval(t)
	cfg := config.Default()
	cfg.Log.ErrorLog = filepath.Join(t.TempDir(), "exed.log")
	p, code := startProcess("exed", "exed", cfg, nil, newWrites())
	require.NotNil(t, p, "exit %d", code)
	for i := range 50 {
		p.log.Info("line", "n", i)
	}
	p.close()
	raw, err := os.ReadFile(cfg.Log.ErrorLog)
	require.NoError(t, err)
	for i := range 50 {
		assert.Contains(t, string(raw), fmt.Sprintf("line: n=%d\n", i))
	}
}

// A SIGHUP's reopen writes what waits to the file being rotated, not to
// the new one.
func TestReopenWritesWhatWaitsToTheRotatedFile(t *testing.T) {
	longInterval(t)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Log.ErrorLog = filepath.Join(dir, "exed.log")
	p, code := startProcess("exed", "exed", cfg, nil, newWrites())
	require.NotNil(t, p, "exit %d", code)
	defer p.close()
	p.log.Info("first")
	p.log.Info("before the rotation")
	require.NoError(t, os.Rename(cfg.Log.ErrorLog, cfg.Log.ErrorLog+".1"))
	p.reopenLogs()
	p.log.Info("after the rotation")
	p.flushLogs()
	old, err := os.ReadFile(cfg.Log.ErrorLog + ".1")
	require.NoError(t, err)
	now, err := os.ReadFile(cfg.Log.ErrorLog)
	require.NoError(t, err)
	assert.Contains(t, string(old), "before the rotation")
	assert.NotContains(t, string(now), "before the rotation")
	assert.Contains(t, string(now), "after the rotation")
}

// longInterval has the process's log writers keep their lines until told
// (Flush, Close), for this test.
func longInterval(t *testing.T) {
	old := logFlushInterval
	logFlushInterval = time.Hour
	t.Cleanup(func() { logFlushInterval = old })
}

// BenchmarkLogWriter writes access-log lines to a file from 8 goroutines
// per CPU, as the server's requests do: each line at once (direct), and
// through the writer exed uses. writes/line is write(2)s per line.
func BenchmarkLogWriter(b *testing.B) {
	line := []byte(`127.0.0.1:50266 - - [01/Dec/2026:12:11:29 +0000] "GET /jobs/6514d174-194c-46bd-a6d9-d936280a1602 HTTP/1.1" 200 194 0.000s` + "\n")
	for _, bc := range []struct {
		name     string
		interval time.Duration
	}{{"direct", 0}, {"interval=10ms", logFlushInterval}} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
			require.NoError(b, err)
			defer f.Close()
			cw := &countingWriter{w: f}
			lw := newLogWriter(cw, bc.interval)
			b.SetParallelism(8)
			b.SetBytes(int64(len(line)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = lw.Write(line)
				}
			})
			require.NoError(b, lw.Close())
			b.StopTimer()
			b.ReportMetric(float64(cw.n)/float64(b.N), "writes/line")
		})
	}
}

type countingWriter struct {
	w *os.File
	n int // Write calls, under the logWriter's lock
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n++
	return c.w.Write(p)
}
