package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// startWorker runs `exed worker -c conf` and waits until it runs.
func startWorker(t *testing.T, dir, conf string) *proc {
	t.Helper()
	p, _ := spawn(t, dir, "exed worker running", "worker", "-c", conf)
	return p
}

// jobState reads a job's state and error through the API.
func jobState(t *testing.T, base, jid string) (float64, string) {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/jobs/"+jid, "")
	require.Equal(t, 200, code, string(body))
	var j map[string]any
	require.NoError(t, json.Unmarshal(body, &j))
	return j["state"].(float64), j["error"].(string)
}

func post(t *testing.T, base, path, body string) string {
	t.Helper()
	code, out := httpDo(t, "POST", base+path, body)
	require.Equal(t, 201, code, string(out))
	var created map[string]string
	require.NoError(t, json.Unmarshal(out, &created))
	return created["jid"]
}

// followLines reads the job's follow stream to the job's end: the job,
// then a line per host event, then the final job.
func followLines(t *testing.T, base, jid string) []string {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/jobs/"+jid+"?follow=1", "")
	require.Equal(t, 200, code, string(body))
	return strings.Split(strings.TrimSpace(string(body)), "\n")
}

// follow waits for the job's end through the follow stream.
func follow(t *testing.T, base, jid string) map[string]any {
	t.Helper()
	lines := followLines(t, base, jid)
	var final map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &final))
	return final
}

// One API server and two workers on one Redis, as real processes.
func TestAPIAndWorkersOnRedis(t *testing.T) {
	redis := redistest.Start(t)
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
[runner]
broker_url = %s
redis_prefix = site1:
concurrency = 4
lease = 1s
shutdown_grace = 2s
`, freePort(t), redis.URL))
	api := start(t, dir, "-c", conf)
	base := "http://" + api.addr

	// Submitted while no worker runs: it waits, and runs once one starts.
	early := post(t, base, "/execute", `{"targets":["localhost"],"cmd":"echo early"}`)
	state, _ := jobState(t, base, early)
	assert.EqualValues(t, 1, state, "Running: queued")
	w1 := startWorker(t, dir, conf)
	w2 := startWorker(t, dir, conf)
	assert.EqualValues(t, 0, follow(t, base, early)["state"])
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr})
	defer rdb.Close()
	n, err := rdb.Exists(context.Background(), "site1:job:"+early, "site1:events:"+early).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "the job's keys are under redis_prefix")

	var jids []string
	for i := 0; i < 20; i++ {
		jids = append(jids, post(t, base, "/execute", fmt.Sprintf(`{"targets":["localhost"],"cmd":"echo job %d"}`, i)))
	}
	for i, jid := range jids {
		final := follow(t, base, jid)
		require.EqualValues(t, 0, final["state"], "%v", final)
		code, body := httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
		require.Equal(t, 200, code)
		assert.Contains(t, string(body), fmt.Sprintf(`"stdout":"job %d\n"`, i))
	}

	// kill -9 of the worker that runs a long job: that job fails with
	// "worker lost"; the other worker keeps serving.
	long := post(t, base, "/execute", `{"targets":["localhost"],"cmd":"sleep 20"}`)
	var holder string
	require.Eventually(t, func() bool {
		holder, _ = rdb.HGet(context.Background(), "site1:job:"+long, "worker").Result()
		return holder != ""
	}, 10*time.Second, 5*time.Millisecond)
	victim, survivor := w1, w2
	if !strings.Contains(holder, "-"+strconv.Itoa(w1.cmd.Process.Pid)+"-") {
		victim, survivor = w2, w1
	}
	require.Contains(t, holder, "-"+strconv.Itoa(victim.cmd.Process.Pid)+"-")
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	final := follow(t, base, long)
	assert.EqualValues(t, 2, final["state"])
	assert.Equal(t, "worker lost", final["error"])
	for i := 0; i < 4; i++ {
		jid := post(t, base, "/execute", `{"targets":["localhost"],"cmd":"true"}`)
		assert.EqualValues(t, 0, follow(t, base, jid)["state"], "the surviving worker serves")
	}
	code, body := httpDo(t, "GET", base+"/jobs?detail=1", "")
	require.Equal(t, 200, code)
	assert.NotContains(t, string(body), `"state":1`, "nothing stuck in Running")

	// Redis down: 503 with a message, never a hang or a 500; back: work
	// resumes without restarting anything.
	redis.Stop()
	start := time.Now()
	code, body = httpDo(t, "GET", base+"/jobs", "")
	assert.Equal(t, 503, code)
	assert.JSONEq(t, `{"message":"job store: redis is not reachable"}`, string(body), "the public text names no address")
	assert.Less(t, time.Since(start), 15*time.Second)
	code, body = httpDo(t, "GET", base+"/healthz", "")
	assert.Equal(t, 503, code)
	assert.NotContains(t, string(body), redis.Addr)
	code, body = httpDo(t, "POST", base+"/execute", `{"targets":["localhost"],"cmd":"true"}`)
	assert.Equal(t, 503, code, string(body))
	assert.NotContains(t, string(body), redis.Addr)
	assert.Contains(t, api.logs.String(), redis.Addr, "the log has the details")

	redis.Restart(t)
	require.Eventually(t, func() bool {
		code, _ := httpDo(t, "GET", base+"/healthz", "")
		return code == 200
	}, 20*time.Second, 20*time.Millisecond)
	jid := post(t, base, "/execute", `{"targets":["localhost"],"cmd":"echo back"}`)
	assert.EqualValues(t, 0, follow(t, base, jid)["state"], "the worker re-made its group and runs jobs again")

	api.stop(t)
	require.NoError(t, survivor.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-survivor.done:
		assert.NoError(t, err, "worker exits 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
}
