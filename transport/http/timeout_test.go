package http_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTimeout: every operation takes "timeout" in seconds, a body member
// or query parameter for POST and a query parameter for GET; a host still running when it
// passes is stopped and FAILED with what it printed, and the job object
// carries the timeout back. A timeout that is not a number of seconds, or
// is over the server's bound, is a 400 that runs and stores nothing.
func TestTimeout(t *testing.T) {
	s := newServer(t, serverOpts{})
	canary := filepath.Join(t.TempDir(), "canary")
	cmd := "echo partial; sleep 30; touch " + canary

	r := s.get("/execute?target=localhost&timeout=0.5&cmd=" + url.QueryEscape(cmd))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var sync map[string]map[string]any
	r.json(t, &sync)
	assert.Equal(t, float64(exe.HostFailed), sync["localhost"]["status"])
	assert.Equal(t, "command timed out", sync["localhost"]["msg"])
	assert.Equal(t, "partial\n", sync["localhost"]["stdout"])

	jid := s.submit("/execute", `{"targets":["localhost"],"cmd":"echo partial; sleep 30; touch `+canary+`","timeout":0.5}`)
	job := s.waitJob(jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "timed out after 0.5 seconds", job.Error)
	var raw map[string]any
	s.get("/jobs/"+jid+"?outputs=1").json(t, &raw)
	assert.Equal(t, 0.5, raw["timeout"], "the job object carries its timeout")
	host := raw["return_data"].(map[string]any)["localhost"].([]any)[0].(map[string]any)
	assert.Equal(t, "command timed out", host["msg"])
	assert.Equal(t, "partial\n", host["stdout"])

	// A POST takes it from the query as well (API.md: body field or
	// query); the query's other parameters are ignored, as they were.
	jid = s.submit("/execute?timeout=0.5&cmd=ignored", `{"targets":["localhost"],"cmd":"echo partial; sleep 30; touch `+canary+`"}`)
	job = s.waitJob(jid)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "timed out after 0.5 seconds", job.Error)

	// Without one, the job object is as before: no "timeout" member.
	jid = s.submit("/ping", `{"targets":["localhost"]}`)
	s.waitJob(jid)
	raw = nil
	s.get("/jobs/"+jid).json(t, &raw)
	assert.NotContains(t, raw, "timeout")

	for _, c := range []struct{ method, path, body, msg string }{
		{"GET", "/ping?target=localhost&timeout=soon", "", `timeout: "soon" is not a number of seconds`},
		{"GET", "/ping?target=localhost&timeout=-1", "", "timeout: must be a number of seconds from 0 to 1e+09"},
		{"GET", "/ping?target=localhost&timeout=NaN", "", "timeout: must be a number of seconds"},
		{"GET", "/ping?target=localhost&timeout=1&timeout=2", "", "timeout: given 2 times"},
		{"GET", "/ping?target=localhost&timeout=61", "", "timeout: at most 60 seconds for a sync request"},
		{"POST", "/ping", `{"targets":["localhost"],"timeout":"10"}`, "timeout: must be a number of seconds"},
		{"POST", "/ping", `{"targets":["localhost"],"timeout":-3}`, "timeout: must be a number of seconds from 0"},
		{"POST", "/ping", `{"targets":["localhost"],"timeout":1e300}`, "timeout: must be a number of seconds from 0"},
		{"POST", "/ping", `{"targets":["localhost"],"timeout":86401}`, "timeout: at most 86400 seconds (the server's maximum)"},
		{"POST", "/execute", `{"targets":["localhost"],"cmd":"touch ` + canary + `","timeout":-1}`, "timeout:"},
		{"POST", "/execute?timeout=soon", `{"targets":["localhost"],"cmd":"touch ` + canary + `"}`, `timeout: "soon" is not a number of seconds`},
		{"POST", "/execute?timeout=2", `{"targets":["localhost"],"cmd":"touch ` + canary + `","timeout":1}`, `timeout: the body says 1 seconds and the query 2: give it once`},
	} {
		var r resp
		if c.method == "GET" {
			r = s.get(c.path)
		} else {
			r = s.post(c.path, c.body)
		}
		if assert.Equal(t, http.StatusBadRequest, r.status, c.path+" "+c.body+": "+string(r.body)) {
			assert.Contains(t, r.message(t), c.msg, c.path+" "+c.body)
		}
	}
	var ids []string
	s.get("/jobs").json(t, &ids)
	assert.Len(t, ids, 3, "refused requests stored nothing")
	assert.NoFileExists(t, canary, "nothing ran past its timeout, nor from a refused request")
}
