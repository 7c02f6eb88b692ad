package exe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is the log's output, read while jobs write to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines whose message is msg.
func (b *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["@message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// byJID picks the line of job jid among lines; nil when there is none.
func byJID(lines []map[string]any, jid string) map[string]any {
	for _, l := range lines {
		if l["jid"] == jid {
			return l
		}
	}
	return nil
}

// The job log: one "job started" and one "job ended" line per job, with
// who, what, how many hosts, how long and how it ended, from the Runner
// that ran it; jobs that never ran get their "job ended" line only.
func TestJobLog(t *testing.T) {
	out := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "exed", Output: out, JSONFormat: true, Level: hclog.Info})
	inv, err := inventory.Parse(strings.NewReader("localhost ansible_connection=local\nlocal2 ansible_connection=local\n"), "hosts")
	require.NoError(t, err)
	x, err := sshnative.New(sshnative.Config{Inventory: inv})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x, Logger: log,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: 1, Queue: 8, Grace: 100 * time.Millisecond, Logger: log})})
	require.NoError(t, err)
	ctx := exe.WithUser(context.Background(), "deployer")

	done, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"localhost", "local2"},
		Execute: exe.ExecuteArgs{Cmd: "sleep 0.3"}})
	require.NoError(t, err)
	failed, err := eng.Submit(ctx, execute("exit 3"))
	require.NoError(t, err)
	wait := func(jid string) {
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := eng.Follow(fctx, jid, func(exe.Event) error { return nil })
		require.NoError(t, err)
	}
	wait(done)
	wait(failed)

	// One worker: while it runs a job, the next waits in the queue.
	pidFile := filepath.Join(t.TempDir(), "pid")
	blocker, err := eng.Submit(ctx, execute("echo $$ > "+pidFile+"; sleep 60"))
	require.NoError(t, err)
	testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	cancelled, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}})
	require.NoError(t, err)
	_, err = eng.Cancel(ctx, cancelled)
	require.NoError(t, err)
	skipped, err := eng.Submit(ctx, execute("echo never"))
	require.NoError(t, err)
	require.NoError(t, eng.Shutdown(context.Background()))

	started, ended := out.lines(t, "job started"), out.lines(t, "job ended")
	for _, jid := range []string{done, failed, blocker, cancelled, skipped} {
		n := 0
		for _, l := range ended {
			if l["jid"] == jid {
				n++
			}
		}
		assert.Equal(t, 1, n, "one end line for job %s\n%v", jid, ended)
	}

	s := byJID(started, done)
	require.NotNil(t, s, "%v", started)
	assert.Equal(t, map[string]any{"@level": "info", "@message": "job started", "@module": "exed.runner",
		"@timestamp": s["@timestamp"], "jid": done, "user": "deployer", "operation": "execute", "targets": float64(2)}, s)
	e := byJID(ended, done)
	require.NotNil(t, e)
	assert.Equal(t, "deployer", e["user"])
	assert.Equal(t, "execute", e["operation"])
	assert.EqualValues(t, 2, e["targets"])
	assert.Equal(t, "Done", e["state"])
	assert.Equal(t, "", e["error"])
	assert.Equal(t, true, e["started"])
	assert.GreaterOrEqual(t, e["duration_seconds"], 0.3, "the run took the command's sleep at least")

	e = byJID(ended, failed)
	assert.Equal(t, "Failure", e["state"])
	assert.Equal(t, "1 of 1 hosts failed", e["error"])
	assert.Contains(t, e, "duration_seconds")

	e = byJID(ended, blocker)
	assert.Equal(t, "server shutdown", e["error"], "the job the shutdown cut short")
	assert.Equal(t, true, e["started"])

	assert.Nil(t, byJID(started, cancelled), "a job cancelled in the queue never started")
	e = byJID(ended, cancelled)
	assert.Equal(t, map[string]any{"@level": "info", "@message": "job ended", "@module": "exed.runner",
		"@timestamp": e["@timestamp"], "jid": cancelled, "user": "", "operation": "ping", "targets": float64(1),
		"state": "Failure", "error": "cancelled", "started": false}, e)

	assert.Nil(t, byJID(started, skipped))
	e = byJID(ended, skipped)
	assert.Equal(t, "server shutdown", e["error"], "the job still queued at shutdown")
	assert.Equal(t, false, e["started"])
	assert.NotContains(t, e, "duration_seconds", "it never ran")

	out.mu.Lock()
	defer out.mu.Unlock()
	for _, cmd := range []string{"sleep 0.3", "exit 3", "echo never"} {
		assert.NotContains(t, out.buf.String(), cmd, "no command in the log: it may hold a secret")
	}
}
