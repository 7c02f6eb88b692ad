package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// localServer starts exed without tokens on loopback, with an inventory
// of one host with a local connection (web01), an access log and an
// audit trail, both files it returns.
func localServer(t *testing.T) (p *proc, accessLog, auditLog string) {
	t.Helper()
	dir := t.TempDir()
	accessLog, auditLog = filepath.Join(dir, "access.log"), filepath.Join(dir, "audit.log")
	p = startOnInventory(t, dir, "web01 ansible_connection=local\n", fmt.Sprintf("[log]\naccess_log = %s\naudit_log = %s\n", accessLog, auditLog))
	return p, accessLog, auditLog
}

// A sync GET whose client leaves while its command runs (as `curl -m 1`
// does) is a 499 in the access log and the metrics, not a 200, and the
// command is stopped. The command sends its pid through a FIFO once it
// runs, so the client leaves while it runs.
func TestSyncRunLeftByItsClientIs499(t *testing.T) {
	p, accessLog, _ := localServer(t)
	base := "http://" + p.addr
	fifo := filepath.Join(t.TempDir(), "pid")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	uri := "/execute?" + url.Values{"target": {"web01"}, "cmd": {"echo $$ > " + fifo + "; sleep 30"}}.Encode()

	c, err := net.Dial("tcp", p.addr)
	require.NoError(t, err)
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", uri, p.addr)
	require.NoError(t, err)
	pidText := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // returns once the command has written it
		pidText <- b
	}()
	var pid int
	select {
	case b := <-pidText:
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err, "%q", b)
	case <-time.After(time.Minute):
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close() // the reader above ends
		}
		t.Fatal("the command did not start")
	}
	require.NoError(t, c.Close())

	want := fmt.Sprintf("%q 499 ", "GET "+uri+" HTTP/1.1")
	require.Eventually(t, func() bool { // another process's log file
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), want)
	}, 30*time.Second, 10*time.Millisecond, "the access log has the request as 499")
	m := scraped(t, base+"/metrics", "")
	assert.Equal(t, 1.0, m.get("exed_http_requests_total", "code", "499", "route", "GET /execute"))
	assert.Zero(t, m.get("exed_http_requests_total", "code", "200", "route", "GET /execute"))
	stopped(t, pid, "the command of the request its client left")
	p.stop(t)
}

// HEAD on the sync endpoints (which link checkers and probes send freely)
// runs nothing: 405 with the methods allowed, no command run, nothing in
// the audit trail. GET runs, as always.
func TestHeadRunsNothing(t *testing.T) {
	p, _, auditLog := localServer(t)
	base := "http://" + p.addr
	canary := filepath.Join(t.TempDir(), "HEADRAN")
	run := url.Values{"target": {"web01"}, "cmd": {"touch " + canary}}.Encode()
	for _, path := range []string{"/ping?target=web01", "/facter?target=web01", "/service?target=web01&name=exe-no-such-service&state=1", "/execute?" + run} {
		res, err := http.Head(base + path)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, path)
		assert.Equal(t, "GET, POST", res.Header.Get("Allow"), path)
	}
	res, err := http.Head(base + "/jobs")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "a GET that only reads answers HEAD")
	assert.NoFileExists(t, canary, "HEAD ran the command")
	b, err := os.ReadFile(auditLog)
	require.NoError(t, err)
	assert.Empty(t, string(b), "HEAD ran an operation")

	code, body := httpDo(t, "GET", base+"/execute?"+run, "")
	require.Equal(t, http.StatusOK, code, string(body))
	assert.FileExists(t, canary, "the same request as a GET runs")
	p.stop(t)
}
