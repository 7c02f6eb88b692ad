package http_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestForks: ping, facter, service, execute and deploy take "forks", a
// body member for POST and a query parameter for GET; the job object
// carries it back only when given. Anything but a whole number of 0 or
// more, and forks on a task, is a 400 naming forks that runs and stores
// nothing.
func TestForks(t *testing.T) {
	s := newServer(t, serverOpts{})
	canary := filepath.Join(t.TempDir(), "canary")

	r := s.get("/execute?target=localhost&forks=3&cmd=echo+hi")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var sync map[string]map[string]any
	r.json(t, &sync)
	assert.Equal(t, "hi\n", sync["localhost"]["stdout"])
	r = s.get("/ping?target=localhost&forks=9999999999")
	assert.Equal(t, http.StatusOK, r.status, "a value past any bound is lowered: %s", r.body)

	jid := s.submit("/execute", `{"targets":["localhost"],"cmd":"echo hi","forks":2}`)
	job := s.waitJob(jid)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	assert.Equal(t, 2, job.Forks)
	var raw map[string]any
	s.get("/jobs/"+jid).json(t, &raw)
	assert.EqualValues(t, 2, raw["forks"], "the job object carries its forks")
	jid = s.submit("/ping", `{"targets":["localhost"],"forks":0}`)
	s.waitJob(jid)
	raw = nil
	s.get("/jobs/"+jid).json(t, &raw)
	assert.NotContains(t, raw, "forks", "0 is no forks of its own")

	const positive = "forks: must be a positive integer (hosts at once; 0 or absent: the server's concurrency)"
	for _, c := range []struct{ method, path, body, msg string }{
		{"GET", "/ping?target=localhost&forks=two", "", `forks: "two" is not a positive integer (hosts at once; 0 or absent: the server's concurrency)`},
		{"GET", "/ping?target=localhost&forks=-1", "", `forks: "-1" is not a positive integer`},
		{"GET", "/ping?target=localhost&forks=1.5", "", `forks: "1.5" is not a positive integer`},
		{"GET", "/ping?target=localhost&forks=", "", `forks: "" is not a positive integer`},
		{"GET", "/ping?target=localhost&forks=99999999999999999999", "", `forks: "99999999999999999999" is not a positive integer`},
		{"GET", "/ping?target=localhost&forks=1&forks=2", "", "forks: given 2 times"},
		{"GET", "/execute?target=localhost&forks=x&cmd=touch+" + canary, "", "forks:"},
		{"POST", "/ping", `{"targets":["localhost"],"forks":"2"}`, positive},
		{"POST", "/ping", `{"targets":["localhost"],"forks":true}`, positive},
		{"POST", "/ping", `{"targets":["localhost"],"forks":-3}`, positive},
		{"POST", "/ping", `{"targets":["localhost"],"forks":1e19}`, "forks: 1e+19 is not a positive integer"},
		{"POST", "/facter", `{"targets":["localhost"],"forks":2.5}`, "forks: 2.5 is not a positive integer (hosts at once; 0 or absent: the server's concurrency)"},
		{"POST", "/service", `{"targets":["localhost"],"name":"x","state":0,"forks":1e400}`, positive},
		{"POST", "/deploy", `{"targets":["localhost"],"role":"web","forks":[2]}`, positive},
		{"POST", "/execute", `{"targets":["localhost"],"cmd":"touch ` + canary + `","forks":-1}`, positive},
		{"POST", "/tasks", `{"targets":["localhost"],"tasktype":"rollingrestart","forks":2}`,
			"forks: tasks pace their hosts themselves (as a rolling restart's batch size does); forks applies to ping, facter, service, execute and deploy"},
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
	assert.Len(t, ids, 2, "refused requests stored nothing")
	assert.NoFileExists(t, canary, "nothing ran from a refused request")
}
