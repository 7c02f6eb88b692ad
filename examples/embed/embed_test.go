package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var binary string

func TestMain(m *testing.M) { os.Exit(testenv.RunWithBinary(m, "embed", &binary)) }

// get answers a GET with its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// post sends a JSON body and returns the jid of the job it created.
func post(t *testing.T, url, body string) string {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	var created struct{ JID string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&created))
	return created.JID
}

// lines reads a follow stream's lines as JSON objects until it ends.
func lines(t *testing.T, rd *bufio.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	for {
		b, err := rd.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), string(b))
		out = append(out, m)
	}
}

// The embedding program serves its own page and exed under /exe/ on one
// mux, runs sync and async operations with its own executor and tasks in
// the plugin process it serves itself, and stops cleanly on SIGTERM: a
// follow stream ends with a last line saying why, the running job gets
// its grace period and ends, and no plugin process is left.
func TestEmbedded(t *testing.T) {
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "ADDR="+addr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// The plugin inherits the output pipes: Wait must not wait for a
	// plugin left behind, which the test reports.
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/")
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "the service listens: %s", &out)

	code, body := get(t, base+"/")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "the service's own page\n", body)
	code, body = get(t, base+"/exe/ping?target=localhost")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"localhost":{"status":1}}`, body)
	code, body = get(t, base+"/exe/facter?target=localhost")
	assert.Equal(t, http.StatusNotImplemented, code, "an operation the executor does not have")
	assert.JSONEq(t, `{"message":"facter is not supported by this executor"}`, body)

	// The task runs in the plugin process, which drives the service's
	// executor: that one does not restart services, and says so.
	var plugins []int
	for _, pid := range testenv.Children(t, cmd.Process.Pid) {
		if strings.HasSuffix(testenv.Cmdline(pid), " plugin task rollingrestart") {
			plugins = append(plugins, pid)
		}
	}
	require.Len(t, plugins, 1, "the task plugin runs as a process of its own")
	jid := post(t, base+"/exe/tasks", `{"tasktype":"rollingrestart","targets":["localhost"],"taskopts":{"service":"nginx"}}`)
	res, err := http.Get(base + "/exe/jobs/" + jid + "?follow=1")
	require.NoError(t, err)
	task := lines(t, bufio.NewReader(res.Body))
	res.Body.Close()
	require.Len(t, task, 4, "%v", task)
	assert.Equal(t, map[string]any{"msg": "localhost", "name": "batch 1/1", "status": 1.0}, task[1]["__ANNOUNCE__"])
	assert.Equal(t, map[string]any{"msg": "not started: service is not supported by this executor", "status": 2.0},
		task[2]["localhost"])
	assert.EqualValues(t, 2, task[3]["state"])
	assert.Equal(t, "service is not supported by this executor", task[3]["error"])

	// A follow waits for a running job when SIGTERM comes.
	dir := t.TempDir()
	jid = post(t, base+"/exe/execute", fmt.Sprintf(`{"targets":["localhost"],"cmd":"touch %[1]s/started; sleep 1; touch %[1]s/slept"}`, dir))
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(dir, "started")); return err == nil },
		30*time.Second, 10*time.Millisecond, "the job starts")
	res, err = http.Get(base + "/exe/jobs/" + jid + "?follow=1")
	require.NoError(t, err)
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	_, err = rd.ReadBytes('\n')
	require.NoError(t, err, "the stream runs")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	rest := lines(t, rd)
	require.Len(t, rest, 1, "%v", rest)
	assert.Equal(t, "stream ended: server shutting down", rest[0]["message"])
	assert.Equal(t, jid, rest[0]["jid"])
	select {
	case <-exited:
		require.NoError(t, waitErr, "a clean exit: %s", &out)
	case <-time.After(60 * time.Second):
		t.Fatal("the service did not stop")
	}
	assert.FileExists(t, filepath.Join(dir, "slept"), "the running job had its grace period")
	assert.True(t, testenv.Ended(plugins[0]), "no plugin process is left")
}

// The README shows this program's main as it is.
func TestReadmeShowsThisMain(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "## Embedding the API in a Go service")
	require.True(t, ok, "the README has the section")
	_, block, ok := strings.Cut(section, "```go\n")
	require.True(t, ok)
	block, _, _ = strings.Cut(block, "```")
	start := strings.Index(string(src), "func main() {")
	require.GreaterOrEqual(t, start, 0)
	end := strings.Index(string(src)[start:], "\n}\n")
	assert.Equal(t, string(src)[start:start+end+3], block)
}
