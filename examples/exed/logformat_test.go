package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonLines parses a whole log that must be JSON lines, every one of them.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "not a JSON line: %s", line)
		for _, k := range []string{"@level", "@message", "@module", "@timestamp"} {
			require.Contains(t, m, k, line)
		}
		out = append(out, m)
	}
	return out
}

// find returns the records whose message is msg and whose keys have the
// values of want.
func find(recs []map[string]any, msg string, want map[string]any) []map[string]any {
	var out []map[string]any
next:
	for _, r := range recs {
		if r["@message"] != msg {
			continue
		}
		for k, v := range want {
			if r[k] != v {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// submitAs posts a job with a bearer token and returns its jid.
func submitAs(t *testing.T, base, path, token, body string) string {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	var created map[string]string
	require.NoError(t, json.NewDecoder(res.Body).Decode(&created))
	return created["jid"]
}

// [log] log_format = json: every line of the server's log is a JSON
// object, the plugins' lines included (with their own level), and each
// job has its start and end lines with who ran what where.
func TestJSONLog(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte(adminToken+" name=admin\n"), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
auth_token_file = %s
[log]
log_format = json
[runner]
shutdown_grace = 2s
[sshnative]
frobs = 2
`, freePort(t), tokens))
	p, _ := spawn(t, dir, `"@message":"exed listening"`, "-c", conf)
	listening := find(jsonLines(t, p.logs.String()), "exed listening", nil)
	require.Len(t, listening, 1)
	base := "http://" + listening[0]["addr"].(string)

	ok := submitAs(t, base, "/execute", adminToken, `{"targets":["localhost"],"cmd":"echo hi"}`)
	failed := submitAs(t, base, "/execute", adminToken, `{"targets":["localhost"],"cmd":"exit 7"}`)
	for _, jid := range []string{ok, failed} {
		req, _ := http.NewRequest("GET", base+"/jobs/"+jid+"?follow=1", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	p.stop(t)

	recs := jsonLines(t, p.logs.String())
	warn := find(recs, "unknown options in [sshnative] ignored: frobs", nil)
	require.Len(t, warn, 1, "the plugin's warning, once, as a record of its own")
	assert.Equal(t, "warn", warn[0]["@level"])
	assert.Equal(t, "exed.plugin.sshnative", warn[0]["@module"])

	job := map[string]any{"user": "admin", "operation": "execute", "targets": float64(1), "@module": "exed.runner"}
	for jid, end := range map[string]map[string]any{
		ok:     {"state": "Done", "error": ""},
		failed: {"state": "Failure", "error": "1 of 1 hosts failed"},
	} {
		job["jid"] = jid
		assert.Len(t, find(recs, "job started", job), 1, "%s\n%s", jid, p.logs)
		for k, v := range end {
			job[k] = v
		}
		job["started"] = true
		ended := find(recs, "job ended", job)
		require.Len(t, ended, 1, "%s\n%s", jid, p.logs)
		assert.IsType(t, float64(0), ended[0]["duration_seconds"])
		delete(job, "state")
		delete(job, "error")
		delete(job, "started")
	}
	assert.Len(t, find(recs, "exed stopped", nil), 1)
	for _, secret := range []string{"echo hi", "exit 7", adminToken} {
		assert.NotContains(t, p.logs.String(), secret, "the log names no command, and no token")
	}
}

// With `exed worker`, a job's lines are in the log of the worker that ran
// it, in the worker's format, and not in the API server's.
func TestJobLogInWorker(t *testing.T) {
	redis := redistest.Start(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte(ciToken+" name=ci\n"), 0o600))
	common := fmt.Sprintf("[api]\nlisten_port = %d\nauth_token_file = %s\n[runner]\nbroker_url = %s\nshutdown_grace = 2s\n",
		freePort(t), tokens, redis.URL)
	api := start(t, dir, "-c", writeConf(t, dir, common))
	workerDir := t.TempDir()
	w, _ := spawn(t, workerDir, `"@message":"exed worker running"`, "worker", "-c",
		writeConf(t, workerDir, common+"[log]\nlog_format = json\n"))
	base := "http://" + api.addr

	jid := submitAs(t, base, "/execute", ciToken, `{"targets":["localhost"],"cmd":"true"}`)
	req, _ := http.NewRequest("GET", base+"/jobs/"+jid+"?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+ciToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()

	w.stop(t)
	api.stop(t)
	recs := jsonLines(t, w.logs.String())
	key := map[string]any{"jid": jid, "user": "ci", "operation": "execute", "targets": float64(1)}
	assert.Len(t, find(recs, "job started", key), 1, w.logs.String())
	key["state"] = "Done"
	assert.Len(t, find(recs, "job ended", key), 1, w.logs.String())
	assert.NotContains(t, api.logs.String(), jid, "the API server queued it; the worker ran it")
	assert.Contains(t, api.logs.String(), "[INFO]  exed: exed listening: addr=", "the API server writes text, its own format")
}
