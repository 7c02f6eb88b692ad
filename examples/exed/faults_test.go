package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/redistest"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fault tests run the built server and workers as real processes on a
// real redis-server, and break them as operators see them break: kill -9,
// a Redis that stops answering, SIGTERM under a follow stream.

// faultLease is the lease of the fault tests: short, so that a lost
// process's jobs fail quickly.
const faultLease = time.Second

// slowRole writes the role "slow" under dir/roles: it notes each run in
// the file named by extra_vars.mark, then runs for a minute.
func slowRole(t *testing.T, dir string) string {
	roles := filepath.Join(dir, "roles")
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "slow"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(roles, "slow", "main.sh"),
		[]byte("echo run >> \"$EXE_VAR_MARK\"\nsleep 60\n"), 0o644))
	return roles
}

// runsOf is how many times a command noted a run in file.
func runsOf(t *testing.T, file string) int {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), "run\n")
}

// waitRun waits until a command noted its run in file.
func waitRun(t *testing.T, file string) {
	require.Eventually(t, func() bool { return runsOf(t, file) > 0 }, 30*time.Second, 10*time.Millisecond, "%s runs", file)
}

// deploySlow submits the slow role on localhost, noting runs in mark.
func deploySlow(t *testing.T, base, mark string) string {
	return post(t, base, "/deploy", fmt.Sprintf(`{"targets":["localhost"],"role":"slow","extra_vars":{"mark":%q}}`, mark))
}

// followWithin is follow bounded: the job must end within d.
func followWithin(t *testing.T, base, jid string, d time.Duration) map[string]any {
	t.Helper()
	c := &http.Client{Timeout: d}
	res, err := c.Get(base + "/jobs/" + jid + "?follow=1")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	lines := readStream(t, res)
	require.NotEmpty(t, lines)
	return lines[len(lines)-1]
}

// lostHostEvent checks that the job's host has one event, FAILED with
// "<lost>: the remote command may still be running": its holder died
// before reporting it.
func lostHostEvent(t *testing.T, base, jid, host, lost string) {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
	require.Equal(t, 200, code, string(body))
	var j struct {
		ReturnData map[string][]map[string]any `json:"return_data"`
	}
	require.NoError(t, json.Unmarshal(body, &j))
	evs := j.ReturnData[host]
	if assert.Len(t, evs, 1, "%s: one event, in %s", host, body) {
		assert.EqualValues(t, 3, evs[0]["status"], "FAILED")
		assert.Equal(t, lost+": the remote command may still be running", evs[0]["msg"])
	}
}

// holderPid is the pid of the process that runs the job (its worker name
// is host-pid-random).
func holderPid(t *testing.T, rdb *goredis.Client, key string) int {
	var holder string
	require.Eventually(t, func() bool {
		holder, _ = rdb.HGet(t.Context(), key, "worker").Result()
		return holder != ""
	}, 10*time.Second, 5*time.Millisecond)
	parts := strings.Split(holder, "-")
	pid, err := strconv.Atoi(parts[len(parts)-2])
	require.NoError(t, err, holder)
	return pid
}

// TestAPIKilledWithRedisURL: with [runner] redis_url alone, API servers
// run the jobs themselves under leases. kill -9 of the one running a
// deploy: the other server fails it "server lost" within about a lease,
// and its lock is released; it never runs again. Then kill -9 of the only
// server left while it runs one: restarted, it fails that one too.
func TestAPIKilledWithRedisURL(t *testing.T) {
	redis := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr})
	defer rdb.Close()
	dir := t.TempDir()
	roles := slowRole(t, dir)
	conf := func(port int) string {
		return writeConf(t, t.TempDir(), fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nredis_url = %s\nlease = %s\nshutdown_grace = 2s\n[sshnative]\nroles = %s\n",
			port, redis.URL, faultLease, roles))
	}
	servers := map[int]*proc{}
	for i := 0; i < 2; i++ {
		p := start(t, dir, "-c", conf(freePort(t)))
		servers[p.cmd.Process.Pid] = p
	}
	var first *proc
	for _, p := range servers {
		first = p
	}
	mark1 := filepath.Join(dir, "mark1")
	jid := deploySlow(t, "http://"+first.addr, mark1)
	waitRun(t, mark1)
	pid := holderPid(t, rdb, "exe:job:"+jid)
	victim := servers[pid]
	require.NotNil(t, victim, "one of the servers runs the job")
	delete(servers, pid)
	var survivor *proc
	for _, p := range servers {
		survivor = p
	}
	base := "http://" + survivor.addr
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	final := followWithin(t, base, jid, 30*faultLease)
	t.Logf("the killed server's job failed %s after the kill (lease %s)", time.Since(killed).Round(10*time.Millisecond), faultLease)
	assert.EqualValues(t, 2, final["state"])
	assert.Equal(t, "server lost", final["error"])
	lostHostEvent(t, base, jid, "localhost", "server lost")

	// Its lock is free: a new deploy on the host is taken, and runs on the
	// surviving server.
	mark2 := filepath.Join(dir, "mark2")
	jid2 := deploySlow(t, base, mark2)
	waitRun(t, mark2)
	assert.Equal(t, 1, runsOf(t, mark1), "the lost job never runs again")

	// kill -9 of the only server; restarted, it fails the job it ran.
	require.NoError(t, survivor.cmd.Process.Signal(syscall.SIGKILL))
	<-survivor.done
	killed = time.Now()
	restarted := start(t, dir, "-c", conf(freePort(t)))
	final = followWithin(t, "http://"+restarted.addr, jid2, 30*faultLease)
	t.Logf("restarted, the server failed its old job %s after the kill", time.Since(killed).Round(10*time.Millisecond))
	assert.EqualValues(t, 2, final["state"])
	assert.Equal(t, "server lost", final["error"])
	lostHostEvent(t, "http://"+restarted.addr, jid2, "localhost", "server lost")
	code, body := httpDo(t, "POST", "http://"+restarted.addr+"/deploy",
		fmt.Sprintf(`{"targets":["localhost"],"role":"slow","extra_vars":{"mark":%q}}`, filepath.Join(dir, "mark3")))
	require.Equal(t, 201, code, "the lock is released: %s", body)
	assert.Equal(t, 1, runsOf(t, mark2), "the lost job never runs again")
	var created map[string]string
	require.NoError(t, json.Unmarshal(body, &created))
	code, _ = httpDo(t, "POST", "http://"+restarted.addr+"/jobs/"+created["jid"]+"/cancel", "")
	assert.Equal(t, 202, code)
	restarted.stop(t)
}

// TestOnlyWorkerKilled: with broker_url and one worker, kill -9 of the
// worker fails its job "worker lost" within about a lease (the API
// server runs the lost-lease recovery), releases its lock, and /healthz
// says degraded until a worker runs again.
func TestOnlyWorkerKilled(t *testing.T) {
	redis := redistest.Start(t)
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nbroker_url = %s\nlease = %s\nshutdown_grace = 2s\n[sshnative]\nroles = %s\n",
		freePort(t), redis.URL, faultLease, slowRole(t, dir)))
	api := start(t, dir, "-c", conf)
	base := "http://" + api.addr
	health := func() (int, map[string]string) {
		code, body := httpDo(t, "GET", base+"/healthz", "")
		var h map[string]string
		require.NoError(t, json.Unmarshal(body, &h), string(body))
		return code, h
	}
	code, h := health()
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]string{"status": "degraded", "message": "dispatcher: no worker has been seen yet: queued jobs wait until one starts"}, h)

	w := startWorker(t, dir, conf)
	require.Eventually(t, func() bool { code, h = health(); return h["status"] == "ok" }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 200, code)

	mark1 := filepath.Join(dir, "mark1")
	jid := deploySlow(t, base, mark1)
	waitRun(t, mark1)
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	final := followWithin(t, base, jid, 30*faultLease)
	t.Logf("the killed worker's job failed %s after the kill (lease %s)", time.Since(killed).Round(10*time.Millisecond), faultLease)
	assert.EqualValues(t, 2, final["state"])
	assert.Equal(t, "worker lost", final["error"])
	lostHostEvent(t, base, jid, "localhost", "worker lost")
	// The server's recovery failed it: its metrics count the job's end
	// and its host's event, once.
	m := waitMetrics(t, base+"/metrics", "", func(m metrics) bool {
		return m.get("exed_jobs_finished_total", "operation", "deploy", "state", "failure") >= 1
	})
	assert.Equal(t, 1.0, m.get("exed_jobs_finished_total", "operation", "deploy", "state", "failure"))
	assert.Equal(t, 1.0, m.get("exed_host_results_total", "operation", "deploy", "status", "failed"))
	assert.Equal(t, 1.0, m.get("exed_jobs_submitted_total", "operation", "deploy"))

	require.Eventually(t, func() bool { code, h = health(); return h["status"] == "degraded" }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 200, code, "the API still serves")
	assert.Contains(t, h["message"], "dispatcher: no worker has been seen for ")

	mark2 := filepath.Join(dir, "mark2")
	jid2 := deploySlow(t, base, mark2) // 201: the lock is released
	state, _ := jobState(t, base, jid2)
	assert.EqualValues(t, 1, state, "queued until a worker starts")
	w2 := startWorker(t, dir, conf)
	waitRun(t, mark2)
	require.Eventually(t, func() bool { _, h = health(); return h["status"] == "ok" }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1, runsOf(t, mark1), "the lost job never runs again")
	code, _ = httpDo(t, "POST", base+"/jobs/"+jid2+"/cancel", "")
	assert.Equal(t, 202, code)
	api.stop(t)
	require.NoError(t, w2.cmd.Process.Signal(syscall.SIGTERM))
	<-w2.done
}

// gatedJob is a command that notes its run in runs, waits for the file
// gate, then prints out.
func gatedJob(runs, gate, out string) string {
	return fmt.Sprintf("echo run >> %s; while [ ! -e %s ]; do sleep 0.05; done; echo %s", runs, gate, out)
}

// outageLease is the lease of TestRedisOutageDuringJobs: long enough for
// the processes running jobs to ride out its outages, which a process
// cannot tell from a partition of its own; past about a quarter of the
// lease it stops its jobs before their leases may lapse.
const outageLease = 30 * time.Second

// TestRedisOutageDuringJobs: Redis (with AOF) stops answering for 3s,
// then 5s, while jobs run, with workers and with the API server running
// its jobs itself. Jobs ending during the outage and jobs ending after
// it: every one ends Done with its output, and runs once. The same with
// the network to Redis cut for 5s.
func TestRedisOutageDuringJobs(t *testing.T) {
	redis := redistest.StartWith(t, redistest.Options{AppendOnly: true})
	proxy := redistest.NewLossyProxy(t, redis.Addr)
	dir := t.TempDir()
	type outage struct {
		name       string
		length     time.Duration
		start, end func()
	}
	pause := func(d time.Duration) outage {
		return outage{"pause" + d.String(), d, func() { redis.Pause(t) }, func() { redis.Resume(t) }}
	}
	cut := func(d time.Duration) outage {
		return outage{"cut" + d.String(), d, proxy.Blackhole, proxy.Restore}
	}
	// Killed and restarted with its AOF: connections are refused at once.
	restart := outage{"restart3.3s", 3300 * time.Millisecond, redis.Stop, func() { redis.Restart(t) }}
	for _, mode := range []struct {
		name    string
		runner  string
		workers int
		outages []outage
	}{
		{"workers", "broker_url", 2, []outage{pause(3 * time.Second), pause(5 * time.Second), cut(3 * time.Second), cut(5 * time.Second), restart}},
		{"in-process", "redis_url", 0, []outage{pause(5 * time.Second), cut(3 * time.Second), cut(5 * time.Second), restart}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			url := "redis://" + proxy.Addr + "/0"
			conf := writeConf(t, t.TempDir(), fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\n%s = %s\nredis_prefix = %s:\nconcurrency = 8\nshutdown_grace = 2s\nlease = %s\n",
				freePort(t), mode.runner, url, mode.name, outageLease))
			api := start(t, dir, "-c", conf)
			base := "http://" + api.addr
			var workers []*proc
			for i := 0; i < mode.workers; i++ {
				workers = append(workers, startWorker(t, dir, conf))
			}
			batch := 0
			run := func(t *testing.T, o outage, endDuring bool) {
				batch++
				gate := filepath.Join(dir, fmt.Sprintf("%s-gate%d", mode.name, batch))
				jobs := map[string]int{}
				for i := 0; i < 5; i++ {
					runs := filepath.Join(dir, fmt.Sprintf("%s-runs%d-%d", mode.name, batch, i))
					jid := post(t, base, "/execute", fmt.Sprintf(`{"targets":["localhost"],"cmd":%q}`, gatedJob(runs, gate, fmt.Sprintf("out%d-%d", batch, i))))
					jobs[jid] = i
					waitRun(t, runs)
				}
				o.start()
				if endDuring {
					require.NoError(t, os.WriteFile(gate, nil, 0o600))
				}
				time.Sleep(o.length) // the outage's length; nothing to wait for
				o.end()
				if !endDuring {
					require.NoError(t, os.WriteFile(gate, nil, 0o600))
				}
				for jid, i := range jobs {
					final := followWithin(t, base, jid, time.Minute)
					assert.EqualValues(t, 0, final["state"], "%s: %v", jid, final["error"])
					assert.NotContains(t, fmt.Sprint(final["error"]), "127.0.0.1", "job errors name no internal address")
					code, body := httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
					require.Equal(t, 200, code)
					var j struct {
						ReturnData map[string][]map[string]any `json:"return_data"`
					}
					require.NoError(t, json.Unmarshal(body, &j))
					if assert.Len(t, j.ReturnData["localhost"], 1, "%s: one event, stored once", jid) {
						assert.Equal(t, fmt.Sprintf("out%d-%d\n", batch, i), j.ReturnData["localhost"][0]["stdout"], "the output is kept")
					}
					assert.Equal(t, 1, runsOf(t, filepath.Join(dir, fmt.Sprintf("%s-runs%d-%d", mode.name, batch, i))), "ran once")
				}
			}
			for _, o := range mode.outages {
				t.Run(o.name, func(t *testing.T) {
					run(t, o, true)
					run(t, o, false)
				})
			}
			api.stop(t)
			for _, w := range workers {
				require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
				<-w.done
			}
		})
	}
}

// readStream reads a follow stream's lines until it ends.
func readStream(t *testing.T, res *http.Response) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		lines = append(lines, m)
	}
	return lines
}

// TestFollowAcrossSIGTERM: the server is told to stop while a follow
// stream waits for a long job that runs on its host; the stream ends at
// once with the job as last known and the reason.
func TestFollowAcrossSIGTERM(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nshutdown_grace = 5s\n", freePort(t)))
	api := start(t, dir, "-c", conf)
	base := "http://" + api.addr
	// The command must be running before the signal: a job still queued
	// then is not started at all, its host SKIPPED, and its stream ends
	// with the job's own lines instead.
	runs := filepath.Join(dir, "runs")
	jid := post(t, base, "/execute", fmt.Sprintf(`{"targets":["localhost"],"cmd":"echo run >> %s; sleep 30"}`, runs))
	waitRun(t, runs)
	res, err := http.Get(base + "/jobs/" + jid + "?follow=1")
	require.NoError(t, err)
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	_, err = rd.ReadBytes('\n')
	require.NoError(t, err, "the stream runs")
	require.NoError(t, api.cmd.Process.Signal(syscall.SIGTERM))
	last, err := rd.ReadBytes('\n')
	require.NoError(t, err, "a last line comes")
	var end map[string]any
	require.NoError(t, json.Unmarshal(last, &end), string(last))
	// The line is in every message: a job that ended (an event line
	// first) must show what it said.
	assert.Equal(t, "stream ended: server shutting down", end["message"], "the line after the SIGTERM: %s", last)
	assert.Equal(t, jid, end["jid"], "the line after the SIGTERM: %s", last)
	assert.EqualValues(t, 1, end["state"], "the job had not ended when the stream did: %s", last)
	select {
	case err := <-api.done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("exed did not stop")
	}
}

// TestFollowAcrossRedisBlip: the API server's network to Redis is cut
// for longer than its Redis timeouts while a follow stream waits; the job
// ends meanwhile (its worker reaches Redis). The stream waits, then goes
// on: the event and the final job line, nothing skipped or repeated.
func TestFollowAcrossRedisBlip(t *testing.T) {
	redis := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, redis.Addr)
	dir := t.TempDir()
	port := freePort(t)
	apiConf := writeConf(t, t.TempDir(), fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nbroker_url = redis://%s/0\nlease = 2s\n", port, proxy.Addr))
	workerConf := writeConf(t, t.TempDir(), fmt.Sprintf("[runner]\nbroker_url = %s\nlease = 2s\n", redis.URL))
	api := start(t, dir, "-c", apiConf)
	base := "http://" + api.addr
	w := startWorker(t, dir, workerConf)
	runs, gate := filepath.Join(dir, "runs"), filepath.Join(dir, "gate")
	jid := post(t, base, "/execute", fmt.Sprintf(`{"targets":["localhost"],"cmd":%q}`, gatedJob(runs, gate, "after the blip")))
	waitRun(t, runs)
	res, err := http.Get(base + "/jobs/" + jid + "?follow=1")
	require.NoError(t, err)
	defer res.Body.Close()
	lines := make(chan []map[string]any, 1)
	go func() { lines <- readStream(t, res) }()
	proxy.Blackhole()
	require.NoError(t, os.WriteFile(gate, nil, 0o600))
	time.Sleep(12 * time.Second) // the blip: longer than any of the server's Redis calls waits
	proxy.Restore()
	var got []map[string]any
	select {
	case got = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatal("the stream did not end")
	}
	require.Len(t, got, 3, "job, event, final job: %v", got)
	assert.Equal(t, "after the blip\n", got[1]["localhost"].(map[string]any)["stdout"])
	assert.EqualValues(t, 0, got[2]["state"])
	assert.Nil(t, got[2]["message"])
	api.stop(t)
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	<-w.done
}
