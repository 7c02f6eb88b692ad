package http_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// server is the embedded default behind a real HTTP server.
type server struct {
	*httptest.Server
	t      *testing.T
	engine *exe.Engine
	store  exe.JobStore
	token  string
}

type serverOpts struct {
	api   exehttp.Options
	disp  exe.LocalOptions
	tasks map[string]exe.Task
	roles string // sshnative's roles directory
	tls   *tls.Config
}

func newServer(t *testing.T, o serverOpts) *server {
	t.Helper()
	store := memory.New(memory.Options{})
	x, err := sshnative.New(sshnative.Config{Roles: o.roles})
	require.NoError(t, err)
	eng, err := exe.NewEngine(exe.Config{Store: store, Dispatcher: exe.NewLocalDispatcher(o.disp), Executor: x, Tasks: o.tasks})
	require.NoError(t, err)
	h := openapitest.Handler(t, exehttp.New(eng, o.api), o.api.Prefix)
	var ts *httptest.Server
	if o.tls != nil {
		ts = httptest.NewUnstartedServer(h)
		ts.TLS = o.tls
		ts.StartTLS()
	} else {
		ts = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		ts.Close()
		_ = eng.Shutdown(context.Background())
	})
	s := &server{Server: ts, t: t, engine: eng, store: store}
	if len(o.api.Tokens) > 0 {
		s.token = o.api.Tokens[0]
	}
	return s
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

func (r resp) message(t *testing.T) string {
	t.Helper()
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	var m map[string]any
	r.json(t, &m)
	require.Len(t, m, 1, "error bodies are exactly {\"message\"}: %s", r.body)
	msg, ok := m["message"].(string)
	require.True(t, ok, string(r.body))
	require.NotEmpty(t, msg)
	return msg
}

func (s *server) do(method, path, contentType, body string) resp {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	require.NoError(s.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	res, err := s.Client().Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (s *server) get(path string) resp { s.t.Helper(); return s.do("GET", path, "", "") }
func (s *server) post(path, body string) resp {
	s.t.Helper()
	return s.do("POST", path, "application/json", body)
}

// submit posts a job and returns its jid.
func (s *server) submit(path, body string) string {
	s.t.Helper()
	r := s.post(path, body)
	require.Equal(s.t, http.StatusCreated, r.status, string(r.body))
	var out map[string]string
	r.json(s.t, &out)
	require.NotEmpty(s.t, out["jid"])
	assert.Equal(s.t, "/jobs/"+out["jid"], r.header.Get("Location"))
	return out["jid"]
}

// followLines reads a whole follow stream.
func (s *server) followLines(jid string) []map[string]json.RawMessage {
	s.t.Helper()
	res, err := s.Client().Get(s.URL + "/jobs/" + jid + "?follow=1")
	require.NoError(s.t, err)
	defer res.Body.Close()
	require.Equal(s.t, http.StatusOK, res.StatusCode)
	assert.Equal(s.t, "application/x-ndjson", res.Header.Get("Content-Type"))
	var lines []map[string]json.RawMessage
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var m map[string]json.RawMessage
		require.NoError(s.t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		lines = append(lines, m)
	}
	require.NoError(s.t, sc.Err())
	return lines
}

func (s *server) waitJob(jid string) exe.Job {
	s.t.Helper()
	lines := s.followLines(jid)
	require.GreaterOrEqual(s.t, len(lines), 2)
	var job exe.Job
	b, _ := json.Marshal(lines[len(lines)-1])
	require.NoError(s.t, json.Unmarshal(b, &job))
	return job
}

func TestTarget(t *testing.T) {
	s := newServer(t, serverOpts{})
	for path, want := range map[string]string{
		"/target":                   `["localhost"]`,
		"/target?pattern=*":         `["localhost"]`,
		"/target?pattern=local*":    `["localhost"]`,
		"/target?pattern=web*":      `[]`,
		"/target?pattern=localhost": `["localhost"]`,
	} {
		r := s.get(path)
		assert.Equal(t, http.StatusOK, r.status, path)
		assert.JSONEq(t, want, string(r.body), path)
	}
	r := s.get("/target?pattern=" + url.QueryEscape("~("))
	assert.Equal(t, http.StatusBadRequest, r.status)
	r.message(t)
}

func TestSyncEndpoints(t *testing.T) {
	s := newServer(t, serverOpts{})
	r := s.get("/ping?target=localhost")
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"localhost":{"status":1}}`, string(r.body))

	r = s.get("/ping?targets=localhost&target=localhost")
	require.Equal(t, http.StatusOK, r.status, "targets is an alias; duplicates collapse")
	assert.JSONEq(t, `{"localhost":{"status":1}}`, string(r.body))

	r = s.get("/execute?target=localhost&cmd=" + url.QueryEscape("echo hi; exit 2"))
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"localhost":{"status":3,"rtc":2,"stdout":"hi\n","stderr":"","msg":"command exited 2"}}`, string(r.body))

	r = s.get("/facter?target=localhost")
	require.Equal(t, http.StatusOK, r.status)
	var facts map[string]exe.Event
	r.json(t, &facts)
	assert.Equal(t, exe.HostOK, facts["localhost"].Status)
	assert.NotEmpty(t, facts["localhost"].Facts["hostname"])

	r = s.get("/service?target=localhost&name=exe-no-such-service&state=1")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var svc map[string]exe.Event
	r.json(t, &svc)
	assert.Contains(t, []exe.HostStatus{exe.HostOK, exe.HostFailed}, svc["localhost"].Status,
		"stopping an unknown service is either nothing to do or a clear failure")
}

func TestAsyncEndpointsAndJobs(t *testing.T) {
	roles := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "nginx", "tags"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(roles, "nginx", "tags", "reconfig.sh"), []byte("echo port $EXE_VAR_PORT\n"), 0o755))
	s := newServer(t, serverOpts{roles: roles})
	ping := s.submit("/ping", `{"targets":["localhost"]}`)
	job := s.waitJob(ping)
	assert.Equal(t, exe.JobDone, job.State)
	assert.Equal(t, exe.OpPing, job.Operate)

	exec := s.submit("/execute", `{"targets":["localhost"],"cmd":"echo hi"}`)
	job = s.waitJob(exec)
	assert.Equal(t, exe.JobDone, job.State)

	facter := s.submit("/facter", `{"targets":["localhost"]}`)
	assert.Equal(t, exe.JobDone, s.waitJob(facter).State)

	// The seed's documents name the list "target" for service/execute.
	svc := s.submit("/service", `{"target":["localhost"],"name":"exe-no-such-service","state":2,"graceful":1}`)
	job = s.waitJob(svc)
	assert.Equal(t, exe.JobFailure, job.State, "restarting an unknown service fails")
	assert.Equal(t, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceRestarted, Graceful: true}, job.Service)

	r := s.post("/deploy", `{"targets":["localhost"],"role":"nginx2","extra_vars":{"port":80}}`)
	assert.Equal(t, http.StatusBadRequest, r.status, "the executor refuses a missing role before the job is stored")
	assert.Equal(t, `role: "nginx2" not found in the roles directory`, r.message(t))
	deploy := s.submit("/deploy", `{"targets":["localhost"],"role":"nginx","partial":["reconfig"],"extra_vars":{"port":80}}`)
	job = s.waitJob(deploy)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	assert.Equal(t, exe.DeployArgs{Role: "nginx", Partial: []string{"reconfig"}, ExtraVars: map[string]any{"port": 80.0}}, job.Deploy)

	// GET /jobs/{jid} with and without outputs.
	r = s.get("/jobs/" + exec)
	require.Equal(t, http.StatusOK, r.status)
	var plain map[string]any
	r.json(t, &plain)
	assert.Equal(t, map[string]any{}, plain["return_data"])
	assert.Equal(t, exec, plain["jid"])
	assert.Equal(t, map[string]any{"cmd": "echo hi"}, plain["operate_args"])
	for _, k := range []string{"state", "error", "startat", "endat", "operate", "targets"} {
		assert.Contains(t, plain, k)
	}
	r = s.get("/jobs/" + exec + "?outputs=1")
	require.Equal(t, http.StatusOK, r.status)
	var withOut exe.Job
	r.json(t, &withOut)
	require.Len(t, withOut.ReturnData["localhost"], 1)
	assert.Equal(t, "hi\n", withOut.ReturnData["localhost"][0].Exec.Stdout)

	// GET /jobs lists newest first; detail=1 gives job objects.
	r = s.get("/jobs")
	require.Equal(t, http.StatusOK, r.status)
	var ids []string
	r.json(t, &ids)
	assert.Equal(t, []string{deploy, svc, facter, exec, ping}, ids)
	r = s.get("/jobs?detail=True")
	var details []exe.Job
	r.json(t, &details)
	require.Len(t, details, 5)
	assert.Equal(t, deploy, details[0].JID)
	assert.Equal(t, exe.OpDeploy, details[0].Operate)

	// DELETE, then it is gone.
	r = s.do("DELETE", "/jobs/"+ping, "", "")
	assert.Equal(t, http.StatusNoContent, r.status)
	assert.Empty(t, r.body)
	r = s.get("/jobs/" + ping)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "no such job", r.message(t))
	r = s.do("DELETE", "/jobs/"+ping, "", "")
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestCancelAndDeleteRunning(t *testing.T) {
	s := newServer(t, serverOpts{})
	jid := s.submit("/execute", `{"targets":["localhost"],"cmd":"sleep 60"}`)
	r := s.do("DELETE", "/jobs/"+jid, "", "")
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "job is still running", r.message(t))

	r = s.post("/jobs/"+jid+"/cancel", "")
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var job exe.Job
	r.json(t, &job)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)

	r = s.post("/jobs/"+jid+"/cancel", "")
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "job has already finished", r.message(t))
	r = s.post("/jobs/no-such-job/cancel", "")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, http.StatusNoContent, s.do("DELETE", "/jobs/"+jid, "", "").status)
}

func TestFollowStreamsLive(t *testing.T) {
	s := newServer(t, serverOpts{})
	// The command waits for a file the test creates only after it has read
	// the first line of the stream, so the stream is provably live.
	gate := t.TempDir() + "/gate"
	jid := s.submit("/execute", `{"targets":["localhost"],"cmd":"while [ ! -e `+gate+` ]; do sleep 0.01; done; echo done"}`)
	res, err := s.Client().Get(s.URL + "/jobs/" + jid + "?follow=1&outputs=1")
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, []string{"chunked"}, res.TransferEncoding)
	rd := bufio.NewReader(res.Body)

	first, err := rd.ReadBytes('\n')
	require.NoError(t, err)
	var head exe.Job
	require.NoError(t, json.Unmarshal(first, &head))
	assert.Equal(t, exe.JobRunning, head.State, "line 1 arrives while the job runs")
	require.NoError(t, writeFile(gate))

	ev, err := rd.ReadBytes('\n')
	require.NoError(t, err)
	var evLine map[string]exe.Event
	require.NoError(t, json.Unmarshal(ev, &evLine))
	assert.Equal(t, "done\n", evLine["localhost"].Exec.Stdout)

	last, err := rd.ReadBytes('\n')
	require.NoError(t, err)
	var final exe.Job
	require.NoError(t, json.Unmarshal(last, &final))
	assert.Equal(t, exe.JobDone, final.State)
	_, err = rd.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the stream ends after the final job line")

	// A finished job streams everything at once, in the same shape.
	lines := s.followLines(jid)
	require.Len(t, lines, 3)
	assert.Contains(t, lines[1], "localhost")
}

func TestFollowStopsWhenClientLeaves(t *testing.T) {
	s := newServer(t, serverOpts{})
	jid := s.submit("/execute", `{"targets":["localhost"],"cmd":"sleep 60"}`)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/jobs/"+jid+"?follow=1", nil)
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	_, err = bufio.NewReader(res.Body).ReadBytes('\n')
	require.NoError(t, err)
	cancel()
	res.Body.Close()
	// The server side of the stream must end: with every stream gone the
	// test server's Close (in cleanup) would otherwise block. Cancel the job
	// and check the server is still responsive.
	r := s.post("/jobs/"+jid+"/cancel", "")
	assert.Equal(t, http.StatusAccepted, r.status)
}

func TestTasksEndpoints(t *testing.T) {
	s := newServer(t, serverOpts{tasks: map[string]exe.Task{"echo": echoTask{}}})
	r := s.get("/tasks")
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `[{"type":"echo","description":"runs cmd everywhere","options":{"type":"object",
		"properties":{"cmd":{"type":["string"]}},"required":["cmd"]}}]`, string(r.body))

	jid := s.submit("/tasks", `{"targets":["localhost"],"taskname":"hello","tasktype":"echo","taskopts":{"cmd":"echo t"}}`)
	job := s.waitJob(jid)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	assert.Equal(t, exe.OpTask, job.Operate)
	assert.Equal(t, exe.TaskArgs{Name: "hello", Type: "echo", Options: map[string]any{"cmd": "echo t"}}, job.Task)

	for body, want := range map[string]string{
		`{"targets":["localhost"],"tasktype":"nope"}`:                              `tasktype: unknown task type "nope"`,
		`{"targets":["localhost"],"tasktype":""}`:                                  `tasktype: a task type is required`,
		`{"targets":["localhost"],"tasktype":"echo","taskopts":{}}`:                `taskopts: option "cmd" is required`,
		`{"targets":["localhost"],"tasktype":"echo","taskopts":{"cmd":1}}`:         `taskopts: option "cmd" must be of type string`,
		`{"targets":["localhost"],"tasktype":"echo","taskopts":[1]}`:               `taskopts: must be an object`,
		`{"targets":["localhost"],"tasktype":"echo","taskopts":{"x":1,"cmd":"a"}}`: `taskopts: unknown option "x"`,
	} {
		r := s.post("/tasks", body)
		assert.Equal(t, http.StatusBadRequest, r.status, body)
		assert.Equal(t, want, r.message(t), body)
	}
}

type echoTask struct{}

func (echoTask) Info(context.Context) (exe.TaskInfo, error) {
	return exe.TaskInfo{Type: "echo", Description: "runs cmd everywhere", Options: exe.Schema{Type: "object",
		Properties: map[string]exe.Property{"cmd": {Type: []string{"string"}}}, Required: []string{"cmd"}}}, nil
}

func (echoTask) Run(ctx context.Context, x exe.Executor, hosts []string, args exe.TaskArgs, emit exe.Emit) error {
	return x.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: args.Options["cmd"].(string)}, emit)
}

func TestHealthz(t *testing.T) {
	s := newServer(t, serverOpts{api: exehttp.Options{Tokens: []string{"secret"}}})
	s.token = "" // /healthz needs no token
	r := s.get("/healthz")
	assert.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"status":"ok"}`, string(r.body))
}

func writeFile(p string) error { return os.WriteFile(p, nil, 0o600) }
