// Package redistest runs a real redis-server for tests: on a free
// 127.0.0.1 port, persisting nothing unless asked, stopped (by PID) when
// the test ends.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/testenv"
)

// Server is a running redis-server.
type Server struct {
	Addr string // 127.0.0.1:port
	URL  string // redis://127.0.0.1:port/0

	bin  string
	dir  string
	opts Options
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  chan struct{}
}

// PID is the redis-server process's ID while it runs, or 0: benchmarks
// read its CPU time.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Options change how the server runs.
type Options struct {
	// AppendOnly turns AOF on, every write synced before its reply: a
	// Restart keeps every job, as a production Redis with AOF does.
	AppendOnly bool
}

// Start starts redis-server; the test fails (or skips, without
// EXE_REQUIRE_INTEGRATION=1) when it is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server (Debian package redis-server)")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Addr: addr, URL: "redis://" + addr + "/0", bin: bin, dir: t.TempDir(), opts: opts}
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	aof := []string{"--appendonly", "no"}
	if s.opts.AppendOnly {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--dir", s.dir, "--loglevel", "warning"}, aof...)
	cmd := exec.Command(s.bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	var log strings.Builder
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
		_ = cmd.Wait()
		close(exited)
	}()
	// Ready when it accepts connections and answers PING.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ping(s.Addr) {
			break
		}
		select {
		case <-exited:
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("redis-server exited at start:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond) // waiting for an external process to listen
	}
	s.mu.Lock()
	s.cmd, s.out = cmd, exited
	s.mu.Unlock()
}

func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Pause stops the server's process (SIGSTOP, by PID): connections stay
// open and the kernel still accepts new ones and buffers what clients
// send, but nothing is answered until Resume, as in a Redis stalled by a
// fork, a slow disk or a VM pause. Its clock runs on meanwhile: keys
// expire by it.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		t.Fatalf("redis-server is not running: cannot send %v", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal redis-server: %v", err)
	}
}

// Stop kills the server (the one this Server started, by PID); unless
// it runs with AppendOnly its data is gone, as after a restart of a Redis
// without persistence.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.out
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart stops the server and starts a new one on the same port: empty,
// or with every write of the old one with AppendOnly.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}
