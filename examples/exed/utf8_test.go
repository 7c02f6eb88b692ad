package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/0ops/exed/internal/redistest"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A command that prints Latin-1 ran on every host: each host keeps its
// result, sync and async, local and over SSH, deploy scripts included, in
// the memory store and in Redis. Each byte that is not UTF-8 reads as one
// U+FFFD, and the output cap cuts no character in two.
func TestOutputNotUTF8KeepsEveryHost(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	redis := redistest.Start(t)
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte(fmt.Sprintf(
		"localhost ansible_connection=local\nother ansible_connection=local\nnode[01:02] ansible_host=127.0.0.1 ansible_port=%d\n", s.Port)), 0o600))
	roles := filepath.Join(dir, "roles")
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "latin1"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(roles, "latin1", "main.sh"), []byte(`printf '\377\n' >&2; printf 'ok \351\n'`), 0o644))
	hosts := []string{"localhost", "other", "node01", "node02"}

	for store, runner := range map[string]string{"memory": "", "redis": "redis_url = " + redis.URL} {
		t.Run(store, func(t *testing.T) {
			conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
[runner]
%s
[sshnative]
inventory = %s
known_hosts = %s
private_key_file = %s
remote_user = %s
use_agent = false
roles = %s
output_cap = 9
`, freePort(t), runner, inv, s.KnownHosts, s.ClientKey, s.User, roles))
			p := start(t, dir, "-c", conf)
			base := "http://" + p.addr
			q := url.Values{"target": hosts, "cmd": {`printf 'caf\351\n'`}}

			code, body := httpDo(t, "GET", base+"/execute?"+q.Encode(), "")
			require.Equal(t, 200, code, string(body))
			var sync map[string]map[string]any
			require.NoError(t, json.Unmarshal(body, &sync))
			require.Len(t, sync, len(hosts))
			for _, h := range hosts {
				assert.EqualValues(t, 5, sync[h]["status"], "%s: %v", h, sync[h]["msg"])
				assert.Equal(t, "caf\uFFFD\n", sync[h]["stdout"], h)
			}

			body2, _ := json.Marshal(map[string]any{"targets": hosts, "cmd": `printf 'caf\351\n'`})
			jid := post(t, base, "/execute", string(body2))
			code, stream := httpDo(t, "GET", base+"/jobs/"+jid+"?follow=1", "")
			require.Equal(t, 200, code)
			assert.True(t, utf8.Valid(stream), "the follow stream is text")
			assert.Equal(t, 1+len(hosts)+1, strings.Count(string(stream), "\n"), "the job, one line per host, the end: %s", stream)
			job := jobOutputs(t, base, jid)
			assert.EqualValues(t, 0, job.State, job.Error)
			for _, h := range hosts {
				require.Len(t, job.ReturnData[h], 1, h)
				assert.Equal(t, "caf\uFFFD\n", job.ReturnData[h][0]["stdout"], h)
			}

			body2, _ = json.Marshal(map[string]any{"targets": hosts, "role": "latin1"})
			job = jobOutputs(t, base, post(t, base, "/deploy", string(body2)))
			assert.EqualValues(t, 0, job.State, job.Error)
			for _, h := range hosts {
				require.Len(t, job.ReturnData[h], 1, h)
				ev := job.ReturnData[h][0]
				assert.Equal(t, "ok \uFFFD", ev["msg"], h)
				assert.Equal(t, "\uFFFD\n", ev["stderr"], h)
			}

			// output_cap = 9 falls inside the fifth é.
			q.Set("cmd", `printf 'ééééé'`)
			code, body = httpDo(t, "GET", base+"/execute?"+q.Encode(), "")
			require.Equal(t, 200, code, string(body))
			require.NoError(t, json.Unmarshal(body, &sync))
			for _, h := range hosts {
				assert.Equal(t, "éééé", sync[h]["stdout"], h)
				assert.Equal(t, true, sync[h]["truncated"], h)
			}

			// Bytes in the request itself are refused, not silently changed.
			code, body = httpDo(t, "GET", base+"/execute?target=localhost&cmd=printf%20%E9", "")
			assert.Equal(t, 400, code)
			assert.JSONEq(t, `{"message":"cmd: not valid UTF-8; write other bytes as shell escapes (printf '\\351')"}`, string(body))
			code, body = httpDo(t, "GET", base+"/target?pattern=web%E9", "")
			assert.Equal(t, 400, code)
			assert.JSONEq(t, `{"message":"pattern: not valid UTF-8"}`, string(body))
			p.stop(t)
		})
	}
}

type outputs struct {
	State      int                         `json:"state"`
	Error      string                      `json:"error"`
	ReturnData map[string][]map[string]any `json:"return_data"`
}

// jobOutputs follows a job to its end and reads it with its outputs.
func jobOutputs(t *testing.T, base, jid string) outputs {
	t.Helper()
	follow(t, base, jid)
	code, body := httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
	require.Equal(t, 200, code)
	assert.True(t, utf8.Valid(body))
	var job outputs
	require.NoError(t, json.Unmarshal(body, &job))
	return job
}
