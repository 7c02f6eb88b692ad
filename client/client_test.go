package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/client"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	require.NoError(t, err)
	return c
}

// follow ranges over a job's events to its end.
func follow(t *testing.T, c *client.Client, jid string) ([]exe.Event, *exe.Job) {
	t.Helper()
	stream := c.Follow(context.Background(), jid, client.FollowOptions{})
	var evs []exe.Event
	for ev, err := range stream.Events() {
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	require.NotNil(t, stream.Job())
	require.True(t, stream.Job().Finished())
	return evs, stream.Job()
}

// apiError is err as an *client.Error.
func apiError(t *testing.T, err error) *client.Error {
	t.Helper()
	var e *client.Error
	require.ErrorAs(t, err, &e)
	return e
}

func TestSyncCalls(t *testing.T) {
	s := newServer(t, serverOpts{})
	c := newClient(t, s.url)
	ctx := context.Background()

	hosts, err := c.Target(ctx, "all[0:1]")
	require.NoError(t, err)
	assert.Equal(t, []string{"h1", "h2"}, hosts)
	hosts, err = c.Target(ctx, "nomatch*")
	require.NoError(t, err)
	assert.Equal(t, []string{}, hosts, "no match is an empty list")

	out, err := c.Ping(ctx, "h1", "h2")
	require.NoError(t, err)
	assert.Equal(t, map[string]exe.Event{"h1": {Host: "h1", Status: exe.HostOK}, "h2": {Host: "h2", Status: exe.HostOK}}, out)

	out, err = c.Execute(ctx, []string{"h3"}, `printf '%s' "a b"; echo err >&2; exit 3`)
	require.NoError(t, err)
	require.Contains(t, out, "h3")
	assert.Equal(t, exe.HostFailed, out["h3"].Status)
	assert.Equal(t, &exe.ExecResult{RTC: 3, Stdout: "a b", Stderr: "err\n"}, out["h3"].Exec)

	out, err = c.Facter(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, exe.HostOK, out["h1"].Status)
	assert.NotEmpty(t, out["h1"].Facts["hostname"], "facts: %v", out["h1"].Facts)

	// The service call's arguments reach the executor: a name it
	// refuses is a 400 naming it, a name it takes runs (and fails here:
	// no such service).
	_, err = c.Service(ctx, []string{"h1"}, exe.ServiceArgs{Name: "-x", State: exe.ServiceStarted})
	e := apiError(t, err)
	assert.Equal(t, http.StatusBadRequest, e.StatusCode)
	assert.Contains(t, e.Message, "name")
	out, err = c.Service(ctx, []string{"h1"}, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceRestarted, Graceful: true})
	require.NoError(t, err)
	assert.Equal(t, exe.HostFailed, out["h1"].Status, "%+v", out["h1"])

	_, err = c.RunSync(ctx, exe.Request{Operate: exe.OpDeploy, Targets: []string{"h1"}})
	assert.ErrorContains(t, err, "deploy runs only as a job")
}

func TestJobs(t *testing.T) {
	s := newServer(t, serverOpts{})
	c := newClient(t, s.url)
	ctx := context.Background()

	jid, err := c.SubmitExecute(ctx, []string{"h1", "h2"}, "echo $((6*7))")
	require.NoError(t, err)
	evs, job := follow(t, c, jid)
	require.Len(t, evs, 2)
	for i, ev := range evs {
		assert.Equal(t, []string{"h1", "h2"}[i], ev.Host)
		assert.Equal(t, int64(i+1), ev.Seq, "events are numbered from 1")
		assert.Equal(t, &exe.ExecResult{Stdout: "42\n"}, ev.Exec)
	}
	assert.Equal(t, exe.JobDone, job.State)
	assert.Equal(t, "echo $((6*7))", job.Execute.Cmd)

	pingJID, err := c.SubmitPing(ctx, "h3")
	require.NoError(t, err)
	evs, _ = follow(t, c, pingJID)
	assert.Equal(t, []exe.Event{{Host: "h3", Seq: 1, Status: exe.HostOK}}, evs)

	factsJID, err := c.SubmitFacter(ctx, "h1")
	require.NoError(t, err)
	evs, _ = follow(t, c, factsJID)
	require.Len(t, evs, 1)
	assert.NotEmpty(t, evs[0].Facts)

	svcJID, err := c.SubmitService(ctx, []string{"h2"}, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceStopped})
	require.NoError(t, err)
	_, job = follow(t, c, svcJID)
	assert.Equal(t, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceStopped}, job.Service)

	deployJID, err := c.SubmitDeploy(ctx, []string{"h1"}, exe.DeployArgs{Role: "web", ExtraVars: map[string]any{"port": 8080}})
	require.NoError(t, err)
	evs, job = follow(t, c, deployJID)
	require.Len(t, evs, 2, "the announce and the step")
	assert.Equal(t, exe.AnnounceHost, evs[0].Host)
	assert.Equal(t, "port 8080\n", evs[1].Exec.Stdout)
	assert.Equal(t, exe.JobDone, job.State)
	partialJID, err := c.SubmitDeploy(ctx, []string{"h1"}, exe.DeployArgs{Role: "web", Partial: []string{"conf"}, ExtraVars: map[string]any{"a": []any{"b"}}})
	require.NoError(t, err)
	evs, _ = follow(t, c, partialJID)
	assert.Equal(t, "conf\n{\"a\":[\"b\"]}", evs[1].Exec.Stdout, "the tag's script, the extra vars on its stdin")

	tasks, err := c.Tasks(ctx)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	assert.Equal(t, "rollingrestart", tasks[0].Type)
	assert.Contains(t, tasks[0].Options.Properties, "service")
	taskJID, err := c.SubmitTask(ctx, []string{"h1", "h2"}, exe.TaskArgs{Name: "rr", Type: "rollingrestart", Options: map[string]any{"service": "exe-no-such-service", "batch": 2}})
	require.NoError(t, err)
	evs, job = follow(t, c, taskJID)
	assert.NotEmpty(t, evs)
	assert.Equal(t, "rr", job.Task.Name)
	assert.EqualValues(t, 2, job.Task.Options["batch"])
	assert.Equal(t, false, job.Task.Options["graceful"], "defaults are filled in")

	ids, err := c.Jobs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{taskJID, partialJID, deployJID, svcJID, factsJID, pingJID, jid}, ids, "newest first")
	details, err := c.JobDetails(ctx)
	require.NoError(t, err)
	require.Len(t, details, 7)
	assert.Equal(t, exe.OpTask, details[0].Operate)
	assert.Empty(t, details[0].ReturnData, "no outputs in the list")

	got, err := c.Job(ctx, jid, false)
	require.NoError(t, err)
	assert.Empty(t, got.ReturnData)
	got, err = c.Job(ctx, jid, true)
	require.NoError(t, err)
	require.Len(t, got.ReturnData["h2"], 1)
	assert.Equal(t, "h2", got.ReturnData["h2"][0].Host)
	assert.Equal(t, "42\n", got.ReturnData["h2"][0].Exec.Stdout)

	_, err = c.Cancel(ctx, jid)
	e := apiError(t, err)
	assert.Equal(t, http.StatusConflict, e.StatusCode, "a finished job")
	assert.Equal(t, "POST", e.Method)
	assert.Equal(t, "/jobs/"+jid+"/cancel", e.Path)

	require.NoError(t, c.Delete(ctx, jid))
	_, err = c.Job(ctx, jid, false)
	assert.Equal(t, http.StatusNotFound, apiError(t, err).StatusCode)

	h, err := c.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, client.Health{Status: "ok"}, h)

	doc, err := c.OpenAPI(ctx)
	require.NoError(t, err)
	var spec struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(doc, &spec))
	assert.True(t, strings.HasPrefix(spec.OpenAPI, "3."), spec.OpenAPI)
	assert.Contains(t, spec.Paths, "/jobs/{jid}/cancel")
}

// A request's timeout reaches the server: a sync call's hosts past it
// are FAILED "command timed out", a job's too, and the job says so.
func TestTimeout(t *testing.T) {
	s := newServer(t, serverOpts{})
	c := newClient(t, s.url)
	ctx := context.Background()
	out, err := c.RunSync(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"h1"},
		Execute: exe.ExecuteArgs{Cmd: "echo started; exec sleep 60"}, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, exe.HostFailed, out["h1"].Status)
	assert.Equal(t, "command timed out", out["h1"].Msg)
	assert.Equal(t, "started\n", out["h1"].Exec.Stdout)

	jid, err := c.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"h1", "h2"},
		Execute: exe.ExecuteArgs{Cmd: "exec sleep 60"}, Timeout: 1500 * time.Millisecond})
	require.NoError(t, err)
	evs, job := follow(t, c, jid)
	assert.Equal(t, 1500*time.Millisecond, job.Timeout)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "timed out after 1.5 seconds", job.Error)
	require.Len(t, evs, 2)
	assert.Equal(t, "command timed out", evs[0].Msg)

	_, err = c.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"h1"}, Timeout: 1e6 * time.Hour})
	e := apiError(t, err)
	assert.Equal(t, http.StatusBadRequest, e.StatusCode)
	assert.Contains(t, e.Message, "timeout")
}

// Cancel answers the job as it ended, with every host's event.
func TestCancel(t *testing.T) {
	s := newServer(t, serverOpts{})
	c := newClient(t, s.url)
	ctx := context.Background()
	jid, err := c.SubmitExecute(ctx, []string{"h1", "h2"}, "echo started; exec sleep 60")
	require.NoError(t, err)
	// Queued or running, the job ends at once, each host with an event.
	job, err := c.Cancel(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	evs, final := follow(t, c, jid)
	require.Len(t, evs, 2, "every host ends with an event")
	assert.Equal(t, "cancelled", final.Error)
	_, err = c.Cancel(ctx, jid)
	assert.Equal(t, http.StatusConflict, apiError(t, err).StatusCode)
}

func TestErrors(t *testing.T) {
	s := newServer(t, serverOpts{api: exehttp.Options{Tokens: []string{"0123456789abcdef-token"}}})
	ctx := context.Background()

	_, err := newClient(t, s.url).Target(ctx, "*")
	e := apiError(t, err)
	assert.Equal(t, http.StatusUnauthorized, e.StatusCode)
	assert.Equal(t, "missing or invalid bearer token", e.Message)
	assert.Equal(t, "GET /target: 401 missing or invalid bearer token", e.Error())

	c := newClient(t, s.url, client.WithToken("0123456789abcdef-token"))
	_, err = c.SubmitExecute(ctx, []string{"h1", "nope"}, "true")
	e = apiError(t, err)
	assert.Equal(t, http.StatusNotFound, e.StatusCode)
	assert.Equal(t, "no hosts match that target: nope", e.Message)
	_, err = c.SubmitExecute(ctx, []string{"h1"}, "")
	assert.Equal(t, http.StatusBadRequest, apiError(t, err).StatusCode)
	_, err = c.SubmitTask(ctx, []string{"h1"}, exe.TaskArgs{Type: "rollingrestart", Options: map[string]any{"nope": 1}})
	e = apiError(t, err)
	assert.Equal(t, http.StatusBadRequest, e.StatusCode)
	assert.Contains(t, e.Message, `"nope"`)
	h, err := newClient(t, s.url).Health(ctx)
	require.NoError(t, err, "/healthz needs no token")
	assert.Equal(t, "ok", h.Status)

	// An answer that is not exed's (a proxy's page) still gives its status
	// and first line.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>502 Bad Gateway</html>\n<p>nginx</p>\n")
	}))
	defer proxy.Close()
	_, err = newClient(t, proxy.URL).Jobs(ctx)
	e = apiError(t, err)
	assert.Equal(t, http.StatusBadGateway, e.StatusCode)
	assert.Equal(t, "<html>502 Bad Gateway</html>", e.Message)

	for _, bad := range []string{"ftp://h", "127.0.0.1:16808", "http://h/?a=1", "http:///x"} {
		_, err := client.New(bad)
		assert.Error(t, err, bad)
	}
}

// An embedding service mounts the API under a prefix of its own; the
// base URL carries it, with or without a trailing slash.
func TestPrefix(t *testing.T) {
	_, ts := mounted(t, "/exe")
	ctx := context.Background()
	for _, base := range []string{ts.URL + "/exe", ts.URL + "/exe/"} {
		c := newClient(t, base)
		out, err := c.Ping(ctx, "h1")
		require.NoError(t, err)
		assert.Equal(t, exe.HostOK, out["h1"].Status)
		jid, err := c.SubmitExecute(ctx, []string{"h2"}, "echo under prefix")
		require.NoError(t, err)
		evs, _ := follow(t, c, jid)
		require.Len(t, evs, 1)
		assert.Equal(t, "under prefix\n", evs[0].Exec.Stdout)
		_, err = c.Cancel(ctx, jid)
		assert.Equal(t, "/exe/jobs/"+jid+"/cancel", apiError(t, err).Path)
	}
	// The service's own routes are still its own.
	_, err := newClient(t, ts.URL).Jobs(ctx)
	assert.Equal(t, http.StatusNotFound, apiError(t, err).StatusCode)
}

// exe's types read and write the wire forms unchanged: what the client
// decodes from the real server, encoded again, is what the server sent.
func TestWireFormsRoundTrip(t *testing.T) {
	s := newServer(t, serverOpts{})
	c := newClient(t, s.url)
	ctx := context.Background()
	var jids []string
	for _, req := range []exe.Request{
		{Operate: exe.OpPing, Targets: []string{"h1"}, Timeout: 2500 * time.Millisecond},
		{Operate: exe.OpFacter, Targets: []string{"h1"}},
		{Operate: exe.OpService, Targets: []string{"h1"}, Service: exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceRestarted, Graceful: true}},
		{Operate: exe.OpExecute, Targets: []string{"h1", "h2"}, Execute: exe.ExecuteArgs{Cmd: "printf 'x\\377y'; exit 1"}},
		{Operate: exe.OpDeploy, Targets: []string{"h1"}, Deploy: exe.DeployArgs{Role: "web", Partial: []string{"conf"}, ExtraVars: map[string]any{"n": 1.5, "l": []any{"a", true}}}},
		{Operate: exe.OpTask, Targets: []string{"h1"}, Task: exe.TaskArgs{Name: "t", Type: "rollingrestart", Options: map[string]any{"service": "exe-no-such-service"}}},
	} {
		jid, err := c.Submit(ctx, req)
		require.NoError(t, err, req.Operate)
		follow(t, c, jid)
		jids = append(jids, jid)
	}
	get := func(path string) []byte {
		res, err := http.Get(s.url + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return b
	}
	for _, jid := range jids {
		raw := get("/jobs/" + jid + "?outputs=1")
		var job exe.Job
		require.NoError(t, json.Unmarshal(raw, &job))
		again, err := json.Marshal(job)
		require.NoError(t, err)
		assert.JSONEq(t, string(raw), string(again), "job %s", job.Operate)

		for i, line := range strings.Split(strings.TrimSpace(string(get("/jobs/"+jid+"?follow=1"))), "\n") {
			var v any
			if i == 0 || !strings.HasPrefix(line, `{"h`) && !strings.HasPrefix(line, `{"__ANNOUNCE__"`) {
				var j exe.Job
				require.NoError(t, json.Unmarshal([]byte(line), &j))
				v = j
			} else {
				var ev map[string]exe.Event
				require.NoError(t, json.Unmarshal([]byte(line), &ev))
				v = ev
			}
			again, err := json.Marshal(v)
			require.NoError(t, err)
			assert.JSONEq(t, line, string(again))
		}
	}
	raw := get("/execute?target=h1&target=h2&cmd=echo+hi")
	var out map[string]exe.Event
	require.NoError(t, json.Unmarshal(raw, &out))
	again, err := json.Marshal(out)
	require.NoError(t, err)
	assert.JSONEq(t, string(raw), string(again))
}

func TestErrorIsMatchable(t *testing.T) {
	var err error = &client.Error{StatusCode: 409, Message: "job is still running", Method: "DELETE", Path: "/jobs/x"}
	wrapped := errors.Join(errors.New("deleting"), err)
	var e *client.Error
	require.ErrorAs(t, wrapped, &e)
	assert.Equal(t, 409, e.StatusCode)
	assert.Equal(t, "DELETE /jobs/x: 409 job is still running", e.Error())
}

// A request's forks reaches the server, sync and async: six hosts, each
// blocked until the probe lets it go, run two at a time under an
// executor that would run four, and the job says it ran with 2. On a
// task, forks is a 400 naming it.
func TestForks(t *testing.T) {
	s := newServer(t, serverOpts{hosts: 6, concurrency: 4})
	c := newClient(t, s.url)
	ctx := context.Background()
	hosts := []string{"h1", "h2", "h3", "h4", "h5", "h6"}

	probe := testenv.NewForksProbe(t, t.TempDir())
	type answer struct {
		out map[string]exe.Event
		err error
	}
	done := make(chan answer, 1)
	go func() {
		out, err := c.RunSync(ctx, exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: probe.Cmd()}, Forks: 2})
		done <- answer{out, err}
	}()
	probe.Drive(len(hosts), 2)
	a := <-done
	require.NoError(t, a.err)
	for _, h := range hosts {
		assert.Equal(t, "released\n", a.out[h].Exec.Stdout, h)
	}
	assert.Equal(t, 2, slices.Max(probe.Seen()))

	probe = testenv.NewForksProbe(t, t.TempDir())
	jid, err := c.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: probe.Cmd()}, Forks: 2})
	require.NoError(t, err)
	probe.Drive(len(hosts), 2)
	evs, job := follow(t, c, jid)
	assert.Len(t, evs, len(hosts))
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	assert.Equal(t, 2, job.Forks)

	_, err = c.Submit(ctx, exe.Request{Operate: exe.OpTask, Targets: []string{"h1"}, Forks: 2,
		Task: exe.TaskArgs{Type: "rollingrestart", Options: map[string]any{"service": "x"}}})
	e := apiError(t, err)
	assert.Equal(t, http.StatusBadRequest, e.StatusCode)
	assert.Contains(t, e.Message, "forks: tasks pace their hosts themselves")
	_, err = c.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"h1"}, Forks: -1})
	assert.Contains(t, apiError(t, err).Message, `forks: "-1" is not a positive integer`)
}
