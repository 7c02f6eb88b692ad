package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/redistest"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowFleet is an inventory of three hosts worked on one at a time: "fast"
// with a local connection, "slow1" and "slow2" over SSH to a real sshd.
// pidFile is where a command on an SSH host can leave its pid.
type slowFleet struct {
	conf    string // the [sshnative] section and inventory for it
	pidFile string
}

func newSlowFleet(t *testing.T, dir string) slowFleet {
	t.Helper()
	s := sshtest.Start(t, sshtest.Options{})
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte(fmt.Sprintf(
		"fast ansible_connection=local\nslow1 ansible_host=127.0.0.1 ansible_port=%d\nslow2 ansible_host=127.0.0.1 ansible_port=%d\n",
		s.Port, s.Port)), 0o600))
	return slowFleet{
		conf: fmt.Sprintf(`[sshnative]
inventory = %s
known_hosts = %s
private_key_file = %s
remote_user = %s
use_agent = false
kill_grace = 300ms
`, inv, s.KnownHosts, s.ClientKey, s.User),
		pidFile: filepath.Join(s.WritableDir(t), "pid"),
	}
}

// stuckOverSSH is a command that ends at once on the local host and, over
// SSH, prints "started", leaves the pid of a loop that outlives SIGHUP in
// pidFile, and runs on.
func stuckOverSSH(pidFile string, nohup bool) string {
	loop := fmt.Sprintf(`trap 'echo hup' HUP; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 1; done`, pidFile)
	if nohup {
		loop = fmt.Sprintf(`nohup sh -c 'echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 1; done' & wait`, pidFile)
	}
	return `if [ -z "$SSH_CONNECTION" ]; then echo fast; else echo started; ` + loop + `; fi`
}

// stopped waits (bounded) until the process pid has ended.
func stopped(t *testing.T, pid int, what string) {
	t.Helper()
	require.Eventually(t, func() bool {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return true
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && f[0] == "Z"
	}, 10*time.Second, 10*time.Millisecond, "%s: process %d still runs", what, pid)
}

// A sync call past sync_timeout answers 200 with every host: the host that
// answered keeps its result, the host it interrupted is FAILED with what
// it printed (and its command, which traps SIGHUP, is stopped), the host
// never started is FAILED "timed out". Through the built server and its
// sshnative plugin process.
func TestSyncTimeoutAnswersEveryHost(t *testing.T) {
	dir := t.TempDir()
	fleet := newSlowFleet(t, dir)
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\nsync_timeout = 2s\n[runner]\nconcurrency = 1\n%s",
		freePort(t), fleet.conf))
	p := start(t, dir, "-c", conf)
	q := url.Values{"target": {"fast", "slow1", "slow2"}, "cmd": {stuckOverSSH(fleet.pidFile, false)}}
	code, body := httpDo(t, "GET", "http://"+p.addr+"/execute?"+q.Encode(), "")
	require.Equal(t, http.StatusOK, code, string(body))
	var out map[string]map[string]any
	require.NoError(t, json.Unmarshal(body, &out))
	require.Len(t, out, 3, string(body))
	assert.EqualValues(t, 5, out["fast"]["status"])
	assert.Equal(t, "fast\n", out["fast"]["stdout"])
	assert.EqualValues(t, 3, out["slow1"]["status"])
	assert.Equal(t, "command timed out", out["slow1"]["msg"])
	assert.EqualValues(t, -1, out["slow1"]["rtc"])
	assert.True(t, strings.HasPrefix(out["slow1"]["stdout"].(string), "started\n"), "partial output: %v", out["slow1"]["stdout"])
	assert.Equal(t, map[string]any{"status": 3.0, "msg": "timed out"}, out["slow2"])
	stopped(t, testenv.WaitPIDFile(t, fleet.pidFile, time.Second), "the command the timeout interrupted")
	p.stop(t)
}

// After a cancel, the job has an event for every host, stored before its
// final line: the result of the host that finished, FAILED "cancelled"
// with the partial output of the host it interrupted (whose nohup'd loop
// is stopped), SKIPPED "cancelled before start" for the host never
// started. In process, and with the job run by an `exed worker` on Redis.
func TestCancelledJobReportsEveryHost(t *testing.T) {
	for _, mode := range []string{"in process", "worker on redis"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			fleet := newSlowFleet(t, dir)
			runner := "[runner]\nconcurrency = 1\n"
			if mode == "worker on redis" {
				runner += "broker_url = " + redistest.Start(t).URL + "\n"
			}
			conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n%s%s", freePort(t), runner, fleet.conf))
			p := start(t, dir, "-c", conf)
			if mode == "worker on redis" {
				startWorker(t, dir, conf)
			}
			base := "http://" + p.addr
			body, _ := json.Marshal(map[string]any{"targets": []string{"fast", "slow1", "slow2"}, "cmd": stuckOverSSH(fleet.pidFile, true)})
			jid := post(t, base, "/execute", string(body))
			pid := testenv.WaitPIDFile(t, fleet.pidFile, 30*time.Second)

			res, err := http.Get(base + "/jobs/" + jid + "?follow=1")
			require.NoError(t, err)
			defer res.Body.Close()
			lines := bufio.NewScanner(res.Body)
			require.True(t, lines.Scan(), "the follow stream's first line")

			code, out := httpDo(t, "POST", base+"/jobs/"+jid+"/cancel", "")
			require.Equal(t, http.StatusAccepted, code, string(out))
			var job map[string]any
			require.NoError(t, json.Unmarshal(out, &job))
			assert.EqualValues(t, 2, job["state"], "the cancel answers with the job ended")
			assert.Equal(t, "cancelled", job["error"])

			code, out = httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
			require.Equal(t, 200, code)
			var full struct {
				ReturnData map[string][]map[string]any `json:"return_data"`
			}
			require.NoError(t, json.Unmarshal(out, &full))
			rd := full.ReturnData
			require.Len(t, rd, 3, string(out))
			assert.Equal(t, "fast\n", rd["fast"][0]["stdout"])
			assert.EqualValues(t, 5, rd["fast"][0]["status"])
			assert.Equal(t, map[string]any{"status": 3.0, "msg": "cancelled", "rtc": -1.0, "stdout": "started\n", "stderr": ""}, rd["slow1"][0])
			assert.Equal(t, []map[string]any{{"status": 2.0, "msg": "cancelled before start"}}, rd["slow2"])

			// The stream: every host's event, then the final job.
			var hosts []string
			for lines.Scan() {
				var line map[string]json.RawMessage
				require.NoError(t, json.Unmarshal(lines.Bytes(), &line))
				if _, final := line["jid"]; final {
					break
				}
				for h := range line {
					hosts = append(hosts, h)
				}
			}
			assert.Equal(t, []string{"fast", "slow1", "slow2"}, hosts, "each host's event came before the final line")
			stopped(t, pid, "the nohup'd loop the cancel interrupted")
			p.stop(t)
		})
	}
}

// A job cancelled while it waits for a worker on Redis ends at once with
// its hosts SKIPPED, and no worker runs it afterwards.
func TestCancelQueuedJobOnRedis(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nbroker_url = %s\n", freePort(t), redistest.Start(t).URL))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	ran := filepath.Join(dir, "ran")
	jid := post(t, base, "/execute", fmt.Sprintf(`{"targets":["localhost"],"cmd":"touch %s"}`, ran))
	cancelBeforeStart(t, base, jid, "localhost")

	// A worker now takes the queue in order: once a later job is done,
	// the cancelled one was passed over.
	startWorker(t, dir, conf)
	later := post(t, base, "/ping", `{"targets":["localhost"]}`)
	assert.EqualValues(t, 0, follow(t, base, later)["state"])
	assert.NoFileExists(t, ran, "the cancelled job never ran")
	p.stop(t)
}

// A job cancelled while it waits for the only worker gives its place in
// the queue back at once: with queue_size 1, the next job is taken while
// the first still runs, and a refusal counts only the job that waits.
func TestCancelledQueuedJobFreesTheQueue(t *testing.T) {
	dir := t.TempDir()
	p := startOnInventory(t, dir, "web01 ansible_connection=local\n", "[runner]\nworkers = 1\nqueue_size = 1\n")
	base := "http://" + p.addr
	pidFile, ran := filepath.Join(dir, "pid"), filepath.Join(dir, "ran")
	running := post(t, base, "/execute", fmt.Sprintf(`{"targets":["web01"],"cmd":"echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; sleep 300"}`, pidFile))
	pid := testenv.WaitPIDFile(t, pidFile, 30*time.Second)
	queued := post(t, base, "/execute", fmt.Sprintf(`{"targets":["web01"],"cmd":"touch %s"}`, ran))

	cancelBeforeStart(t, base, queued, "web01")

	next := post(t, base, "/execute", `{"targets":["web01"],"cmd":"echo next"}`) // 503 before the fix
	code, out := httpDo(t, "POST", base+"/execute", `{"targets":["web01"],"cmd":"true"}`)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.JSONEq(t, `{"message":"job queue is full (1 jobs waiting); try again later"}`, string(out))

	code, out = httpDo(t, "POST", base+"/jobs/"+running+"/cancel", "")
	require.Equal(t, http.StatusAccepted, code, string(out))
	stopped(t, pid, "the cancelled job's command")
	assert.EqualValues(t, 0, follow(t, base, next)["state"], "the job queued after the cancel runs")
	assert.NoFileExists(t, ran, "the cancelled job never ran")
	p.stop(t)
}

// cancelBeforeStart cancels job jid, which waits for a worker, and checks
// that it ends at once: state 2 (failure), error "cancelled", and its one
// host SKIPPED "cancelled before start".
func cancelBeforeStart(t *testing.T, base, jid, host string) {
	t.Helper()
	code, out := httpDo(t, "POST", base+"/jobs/"+jid+"/cancel", "")
	require.Equal(t, http.StatusAccepted, code, string(out))
	code, out = httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
	require.Equal(t, 200, code)
	var job struct {
		State      int                         `json:"state"`
		Error      string                      `json:"error"`
		ReturnData map[string][]map[string]any `json:"return_data"`
	}
	require.NoError(t, json.Unmarshal(out, &job))
	assert.Equal(t, 2, job.State)
	assert.Equal(t, "cancelled", job.Error)
	assert.Equal(t, map[string][]map[string]any{host: {{"status": 2.0, "msg": "cancelled before start"}}}, job.ReturnData)
}

// SIGTERM: after shutdown_grace the running job's commands are stopped,
// a HUP-trapping one included, before the server exits.
func TestShutdownStopsRunningCommands(t *testing.T) {
	dir := t.TempDir()
	fleet := newSlowFleet(t, dir)
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nconcurrency = 1\nshutdown_grace = 1s\n%s",
		freePort(t), fleet.conf))
	p := start(t, dir, "-c", conf)
	body, _ := json.Marshal(map[string]any{"targets": []string{"slow1"}, "cmd": stuckOverSSH(fleet.pidFile, false)})
	post(t, "http://"+p.addr, "/execute", string(body))
	pid := testenv.WaitPIDFile(t, fleet.pidFile, 30*time.Second)
	p.stop(t)
	stopped(t, pid, "the command running at shutdown")
}
