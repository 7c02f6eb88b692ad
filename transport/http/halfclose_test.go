package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client that sends its request and half-closes its connection (shuts
// down its write side, as `socat -t5` and some probes do) still reads the
// answer, but net/http cancels the request's context at once. /healthz
// answers as for any client, and a request cut short by it is no internal
// error. The executor is a plugin process, whose calls end with the
// context.
func TestHalfClosedClient(t *testing.T) {
	bins, err := plugintest.Build(t.TempDir(), map[string]string{"testexec": "./internal/plugintest/testexec"})
	require.NoError(t, err)
	x, err := executor.Start(context.Background(), executor.Options{Name: "testexec", Path: bins["testexec"]})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	logs := &lockedBuffer{}
	api := openapitest.Handler(t, exehttp.New(eng, exehttp.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})}), "")
	cancelled := make(chan struct{}, 10)
	// The handler starts once net/http has seen the half-close and
	// cancelled the request's context, which otherwise races with it.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)

	halfClosed := func(path string) (int, map[string]any) {
		t.Helper()
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, ts.Listener.Addr())
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		select {
		case <-cancelled:
		default:
			t.Fatal("the request's context was not cancelled by the half-close")
		}
		var body map[string]any
		require.NoError(t, json.Unmarshal(b, &body), string(b))
		return res.StatusCode, body
	}

	code, body := halfClosed("/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"status": "ok"}, body)

	code, body = halfClosed("/execute?target=a&cmd=block")
	assert.Equal(t, 499, code)
	assert.Equal(t, map[string]any{"message": "request cancelled: the client closed its connection"}, body)
	assert.NotContains(t, logs.String(), "[ERROR]")
}

// lockedBuffer is a log sink written from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
