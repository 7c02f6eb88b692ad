package http_test

import (
	"bufio"
	"fmt"
	"io"
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

	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requestsSeen is an Observer that passes on each request it is told of,
// as "route code", once the request has been answered.
type requestsSeen chan string

func (c requestsSeen) Request(route string, code int, _ time.Duration) {
	c <- route + " " + strconv.Itoa(code)
}

func (requestsSeen) FollowStreams(int) {}

// A sync GET whose client goes away while its command runs is cut short:
// the command is stopped, and the request is answered, counted and
// audited as 499 (API.md), not as a 200 with every host "cancelled". The
// client either half-closes its connection (shuts down its sending side,
// and still reads the answer) or closes it. The command tells the test
// its pid through a FIFO once it runs, so the client leaves while it
// runs, not before.
func TestSyncRunLeftByItsClient(t *testing.T) {
	for _, halfClose := range []bool{true, false} {
		name := map[bool]string{true: "half-closed", false: "closed"}[halfClose]
		t.Run(name, func(t *testing.T) {
			seen := make(requestsSeen, 10)
			trail := &lockedBuffer{}
			s := newServer(t, serverOpts{api: exehttp.Options{Observer: seen, Audit: exehttp.NewAudit(trail, nil)}})
			fifo := filepath.Join(t.TempDir(), "pid")
			require.NoError(t, syscall.Mkfifo(fifo, 0o600))
			canary := filepath.Join(t.TempDir(), "canary")
			cmd := "echo $$ > " + fifo + "; sleep 30; touch " + canary
			path := "/execute?target=localhost&cmd=" + url.QueryEscape(cmd)

			c, err := net.Dial("tcp", s.Listener.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, s.Listener.Addr())
			require.NoError(t, err)
			pid := readPID(t, fifo)
			if halfClose {
				require.NoError(t, c.(*net.TCPConn).CloseWrite())
				require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				require.NoError(t, err)
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				require.NoError(t, err)
				assert.Equal(t, 499, res.StatusCode, string(b))
				assert.JSONEq(t, `{"message":"request cancelled: the client closed its connection"}`, string(b))
			} else {
				require.NoError(t, c.Close())
			}
			select {
			case got := <-seen:
				assert.Equal(t, "GET /execute 499", got, "the request as counted")
			case <-time.After(time.Minute):
				t.Fatal("the request was not answered")
			}
			assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the command is stopped before the answer")
			assert.NoFileExists(t, canary)
			recs := auditRecords(t, trail)
			require.Len(t, recs, 1)
			assert.Equal(t, "run", recs[0].Action)
			assert.Equal(t, "cancelled", recs[0].Outcome)
			assert.Equal(t, 499, recs[0].Status)
			assert.Equal(t, "request cancelled: the client closed its connection", recs[0].Message)
		})
	}
}

// readPID reads the pid a command writes to fifo, which blocks until the
// command runs (bounded: a command that never runs fails the test).
func readPID(t *testing.T, fifo string) int {
	t.Helper()
	got := make(chan []byte, 1)
	failed := make(chan error, 1)
	go func() {
		b, err := os.ReadFile(fifo)
		if err != nil {
			failed <- err
			return
		}
		got <- b
	}()
	select {
	case b := <-got:
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err, "%q", b)
		return pid
	case err := <-failed:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		// Unblock the reader, so that it does not outlive the test.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("the command did not start")
	}
	return 0
}
