package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// notifySocket is what systemd gives a Type=notify service: a datagram
// socket named in NOTIFY_SOCKET. Each message arrives with the sender's
// pid (SO_PASSCRED), which systemd checks against NotifyAccess=main. It
// is read with no goroutine between: a message sent is in the socket's
// queue from then on, so none can tell for sure that nothing was sent.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	raw, err := conn.SyscallConn()
	require.NoError(t, err)
	var serr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}))
	require.NoError(t, serr)
	return &notifySocket{path: path, conn: conn}
}

// read returns the next message and its sender's pid, waiting for it
// until deadline; with a zero deadline, only a message already queued
// (ok is false when there is none).
func (s *notifySocket) read(t *testing.T, deadline time.Time) (text string, pid int, ok bool) {
	t.Helper()
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	var n, oobn int
	var err error
	if deadline.IsZero() {
		// A deadline already past would fail the read without trying it:
		// ask the socket itself, without blocking.
		raw, rerr := s.conn.SyscallConn()
		require.NoError(t, rerr)
		require.NoError(t, raw.Read(func(fd uintptr) bool {
			n, oobn, _, _, err = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_DONTWAIT)
			return true
		}))
		if errors.Is(err, syscall.EAGAIN) {
			return "", 0, false
		}
	} else {
		require.NoError(t, s.conn.SetReadDeadline(deadline))
		n, oobn, _, _, err = s.conn.ReadMsgUnix(buf, oob)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", 0, false
		}
	}
	require.NoError(t, err)
	pid = -1
	cms, err := syscall.ParseSocketControlMessage(oob[:oobn])
	require.NoError(t, err)
	for _, cm := range cms {
		if cred, err := syscall.ParseUnixCredentials(&cm); err == nil {
			pid = int(cred.Pid)
		}
	}
	return string(buf[:n]), pid, true
}

// next returns the next message, which must come from pid.
func (s *notifySocket) next(t *testing.T, pid int) string {
	t.Helper()
	text, from, ok := s.read(t, time.Now().Add(30*time.Second))
	require.True(t, ok, "no notification within 30s")
	assert.Equal(t, pid, from, "sent by exed's main process (NotifyAccess=main): %q", text)
	return text
}

// none checks that no message has been sent since the last one read.
func (s *notifySocket) none(t *testing.T) {
	t.Helper()
	if text, _, ok := s.read(t, time.Time{}); ok {
		t.Errorf("unexpected notification %q", text)
	}
}

// monotonicNow is CLOCK_MONOTONIC in microseconds, read here rather than
// with the code under test.
func monotonicNow(t *testing.T) int64 {
	var ts unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	return ts.Sec*1_000_000 + ts.Nsec/1000
}

// reload sends SIGHUP and checks the two messages it must cause:
// RELOADING=1 stamped with the monotonic clock of the moment, then READY=1
// with the status of before.
// during, when set, runs between the two.
func (s *notifySocket) reload(t *testing.T, p *proc, status string, during func()) {
	t.Helper()
	before := monotonicNow(t)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	msg := s.next(t, p.cmd.Process.Pid)
	lines := strings.Split(msg, "\n")
	require.Len(t, lines, 3, msg)
	assert.Equal(t, "RELOADING=1", lines[0])
	usec, ok := strings.CutPrefix(lines[1], "MONOTONIC_USEC=")
	require.True(t, ok, msg)
	stamp, err := strconv.ParseInt(usec, 10, 64)
	require.NoError(t, err)
	assert.Equal(t, "STATUS=reloading", lines[2])
	if during != nil {
		during()
	}
	assert.Equal(t, "READY=1\nSTATUS="+status, s.next(t, p.cmd.Process.Pid))
	after := monotonicNow(t)
	assert.True(t, before <= stamp && stamp <= after, "MONOTONIC_USEC %d is the time of the reload, in [%d, %d]", stamp, before, after)
}

// stop sends SIGTERM: STOPPING=1 comes, then exed exits 0, and nothing
// else was sent.
func (s *notifySocket) stop(t *testing.T, p *proc) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, "STOPPING=1\nSTATUS=stopping: finishing the jobs under way", s.next(t, p.cmd.Process.Pid))
	select {
	case err := <-p.done:
		require.NoError(t, err, "exit 0 on SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
	s.none(t)
}

// openWriter opens the named pipe path for writing once a reader has
// opened it (bounded: 30s).
func openWriter(t *testing.T, path string) *os.File {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Without a reader, a non-blocking open fails with ENXIO.
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			return f
		}
		require.ErrorIs(t, err, syscall.ENXIO)
		require.True(t, time.Now().Before(deadline), "nothing opened %s for reading within 30s", path)
		time.Sleep(5 * time.Millisecond)
	}
}

func bearer(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// Under systemd (Type=notify): READY=1 once the server listens,
// RELOADING=1 and READY=1 around a SIGHUP reload (which is in force when
// READY=1 comes), STOPPING=1 on SIGTERM.
func TestSystemdNotifyServer(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte(adminToken+" name=admin\n"), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\nauth_token_file = %s\n[runner]\nshutdown_grace = 2s\n",
		freePort(t), tokens))
	ns := listenNotify(t)
	// Started, not yet ready: READY=1 is what says so, as under systemd.
	p, _ := spawnEnv(t, dir, []string{"NOTIFY_SOCKET=" + ns.path}, "jobs are kept in memory", "-c", conf)
	pid := p.cmd.Process.Pid
	addr, ok := strings.CutPrefix(ns.next(t, pid), "READY=1\nSTATUS=serving on ")
	require.True(t, ok)
	assert.Equal(t, 200, bearer(t, "http://"+addr+"/target", adminToken), "ready means serving")
	assert.Contains(t, p.logs.String(), "exed listening: addr="+addr)

	// The credentials file becomes a named pipe: the reload waits on it
	// until the test writes the new tokens, so the test sees exed inside
	// its reload.
	fifo := filepath.Join(dir, "tokens.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	require.NoError(t, os.Rename(fifo, tokens))
	ns.reload(t, p, "serving on "+addr, func() {
		w := openWriter(t, tokens)
		ns.none(t) // READY=1 is not sent while the reload goes on
		_, err := w.WriteString(otherToken + " name=other\n")
		require.NoError(t, err)
		require.NoError(t, w.Close())
	})
	assert.Equal(t, 401, bearer(t, "http://"+addr+"/target", adminToken), "the reload is in force once READY=1 says it is over")
	assert.Equal(t, 200, bearer(t, "http://"+addr+"/target", otherToken))

	require.NoError(t, os.Remove(tokens))
	require.NoError(t, os.WriteFile(tokens, []byte(adminToken+" name=admin\n"), 0o600))
	ns.reload(t, p, "serving on "+addr, nil)
	assert.Equal(t, 200, bearer(t, "http://"+addr+"/target", adminToken))

	ns.stop(t, p)
}

// The same for `exed worker`: READY=1 once it takes jobs from the broker.
func TestSystemdNotifyWorker(t *testing.T) {
	redis := redistest.Start(t)
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nbroker_url = %s\nshutdown_grace = 2s\n",
		freePort(t), redis.URL))
	api := start(t, dir, "-c", conf)
	base := "http://" + api.addr
	queued := post(t, base, "/execute", `{"targets":["localhost"],"cmd":"echo queued"}`)

	ns := listenNotify(t)
	w, _ := spawnEnv(t, dir, []string{"NOTIFY_SOCKET=" + ns.path}, "exed worker running", "worker", "-c", conf)
	pid := w.cmd.Process.Pid
	status := ns.next(t, pid)
	name, ok := strings.CutPrefix(status, "READY=1\nSTATUS=running jobs as ")
	require.True(t, ok, status)
	assert.Contains(t, name, "-"+strconv.Itoa(pid)+"-", "the worker's name")
	assert.EqualValues(t, 0, follow(t, base, queued)["state"], "ready means taking jobs: the one queued before runs")

	ns.reload(t, w, "running jobs as "+name, nil)
	jid := post(t, base, "/execute", `{"targets":["localhost"],"cmd":"true"}`)
	assert.EqualValues(t, 0, follow(t, base, jid)["state"], "still taking jobs after the reload")

	ns.stop(t, w)
	api.stop(t)
}
