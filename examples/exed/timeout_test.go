package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stuckCmd prints "partial", writes its shell's PID to a new file in dir
// and runs on, ignoring SIGHUP, until it is stopped.
func stuckCmd(dir string) string {
	return fmt.Sprintf(`echo partial; f=$(mktemp -p %s pid.XXXXXX); echo $$ > $f.tmp; mv $f.tmp $f.pid; trap '' HUP; while :; do sleep 1; done`, dir)
}

// pidsIn reads the PIDs stuckCmd wrote to dir.
func pidsIn(t *testing.T, dir string) []int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	require.NoError(t, err)
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	killAtEnd(t, pids...)
	return pids
}

// assertTimedOut checks the msg of a host its timeout stopped. On a
// machine so loaded that stopping took longer than its bound, the msg
// says the command may still run, and the test's own bounded wait for
// the processes' end decides.
func assertTimedOut(t *testing.T, msg any, host string) {
	t.Helper()
	text, _ := msg.(string)
	if text != "command timed out" {
		assert.Equal(t, "command timed out; stopping the command did not finish; the remote command may still be running", text, host)
	}
}

// A request's timeout, through the built server and its executor plugin,
// locally and over SSH: async and sync, each host still running when it
// passes is FAILED "command timed out" with what it printed, and its
// command is stopped, though it ignores SIGHUP.
func TestRequestTimeoutStopsCommands(t *testing.T) {
	dir := t.TempDir()
	conf, pids := orphanFleet(t, dir, "shutdown_grace = 1s")
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr

	jid := post(t, base, "/execute", fmt.Sprintf(`{"targets":["localhost","remote"],"cmd":%q,"timeout":3}`, stuckCmd(pids)))
	final := follow(t, base, jid)
	assert.EqualValues(t, 2, final["state"])
	assert.Equal(t, "timed out after 3 seconds", final["error"])
	assert.EqualValues(t, 3, final["timeout"])
	code, out := httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
	require.Equal(t, 200, code)
	var job struct {
		ReturnData map[string][]map[string]any `json:"return_data"`
	}
	require.NoError(t, json.Unmarshal(out, &job))
	for _, host := range []string{"localhost", "remote"} {
		require.Len(t, job.ReturnData[host], 1, host)
		ev := job.ReturnData[host][0]
		assert.EqualValues(t, 3, ev["status"], host)
		assertTimedOut(t, ev["msg"], host)
		assert.Equal(t, "partial\n", ev["stdout"], host)
	}
	started := pidsIn(t, pids)
	require.Len(t, started, 2, "both hosts' commands had started")

	sync := filepath.Join(pids, "sync")
	require.NoError(t, os.Mkdir(sync, 0o700))
	require.NoError(t, os.Chmod(sync, 0o777)) // the SSH user writes there too
	code, out = httpDo(t, "GET", base+"/execute?target=remote&target=localhost&timeout=2&cmd="+url.QueryEscape(stuckCmd(sync)), "")
	require.Equal(t, 200, code, string(out))
	var res map[string]map[string]any
	require.NoError(t, json.Unmarshal(out, &res))
	for _, host := range []string{"localhost", "remote"} {
		assert.EqualValues(t, 3, res[host]["status"], host)
		assertTimedOut(t, res[host]["msg"], host)
		assert.Equal(t, "partial\n", res[host]["stdout"], host)
	}
	started = append(started, pidsIn(t, sync)...)
	require.Len(t, started, 4)
	require.Eventually(t, func() bool {
		for _, pid := range started {
			if !testenv.Ended(pid) {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "every timed-out command was stopped")
	p.stop(t)
}

// With the default configuration, the hosts of one operation are worked
// on at once well beyond the CPU count: twenty hosts each wait until all
// twenty have started, which only ends if they run together (else the
// request's timeout fails them).
func TestDefaultForksAreNotTheCPUCount(t *testing.T) {
	dir := t.TempDir()
	p := startOnInventory(t, dir, "[fleet]\nh[01:20] ansible_connection=local\n", "")
	marks := filepath.Join(dir, "started")
	require.NoError(t, os.Mkdir(marks, 0o700))
	barrier := fmt.Sprintf(`mktemp -p %[1]s >/dev/null; while [ $(ls %[1]s | wc -l) -lt 20 ]; do sleep 0.05; done; echo together`, marks)
	q := url.Values{"cmd": {barrier}, "timeout": {"30"}}
	for i := 1; i <= 20; i++ {
		q.Add("target", fmt.Sprintf("h%02d", i))
	}
	code, out := httpDo(t, "GET", "http://"+p.addr+"/execute?"+q.Encode(), "")
	require.Equal(t, 200, code, string(out))
	var res map[string]map[string]any
	require.NoError(t, json.Unmarshal(out, &res))
	require.Len(t, res, 20)
	for host, ev := range res {
		assert.EqualValues(t, 5, ev["status"], "%s: %v", host, ev["msg"])
		assert.Equal(t, "together\n", ev["stdout"], host)
	}
	p.stop(t)
}
