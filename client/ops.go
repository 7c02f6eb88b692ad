package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/0ops/exed/exe"
)

// Target returns the inventory hosts that pattern selects, sorted (GET
// /target): Ansible's pattern rules, "" meaning "*". No match is an empty
// list, not an error.
func (c *Client) Target(ctx context.Context, pattern string) ([]string, error) {
	q := url.Values{}
	if pattern != "" {
		q.Set("pattern", pattern)
	}
	hosts := []string{}
	if err := c.do(ctx, "GET", c.endpoint(q, "target"), nil, &hosts, http.StatusOK); err != nil {
		return nil, err
	}
	return hosts, nil
}

// RunSync runs req in the API process and returns one event per target
// host, each with its Host set (GET /ping, /facter, /service, /execute).
// A host name that is not in the inventory is a 404 *Error and nothing
// runs; hosts the server's sync_timeout cut short are FAILED in the
// result, not an error. Deploy and tasks run only as jobs (Submit).
// req.Timeout and req.Forks (hosts at once, as ansible -f; the server
// lowers a value above its concurrency) are sent when set.
func (c *Client) RunSync(ctx context.Context, req exe.Request) (map[string]exe.Event, error) {
	q := url.Values{"target": req.Targets}
	if req.Timeout > 0 {
		q.Set("timeout", strconv.FormatFloat(req.Timeout.Seconds(), 'f', -1, 64))
	}
	if req.Forks != 0 {
		q.Set("forks", strconv.Itoa(req.Forks))
	}
	switch req.Operate {
	case exe.OpPing, exe.OpFacter:
	case exe.OpService:
		q.Set("name", req.Service.Name)
		q.Set("state", strconv.Itoa(int(req.Service.State)))
		if req.Service.Graceful {
			q.Set("graceful", "1")
		}
	case exe.OpExecute:
		q.Set("cmd", req.Execute.Cmd)
	case exe.OpDeploy, exe.OpTask:
		return nil, fmt.Errorf("%s runs only as a job: use Submit", req.Operate)
	default:
		return nil, fmt.Errorf("unknown operation %q", req.Operate)
	}
	var out map[string]exe.Event
	if err := c.do(ctx, "GET", c.endpoint(q, string(req.Operate)), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	for host, ev := range out {
		ev.Host = host
		out[host] = ev
	}
	return out, nil
}

// Ping pings hosts and waits for every answer (GET /ping).
func (c *Client) Ping(ctx context.Context, hosts ...string) (map[string]exe.Event, error) {
	return c.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: hosts})
}

// Facter gathers the facts of hosts, each host's under its event's Facts
// (GET /facter).
func (c *Client) Facter(ctx context.Context, hosts ...string) (map[string]exe.Event, error) {
	return c.RunSync(ctx, exe.Request{Operate: exe.OpFacter, Targets: hosts})
}

// Service brings a service to a state on hosts (GET /service): status 5
// (CHANGED) when it did something, 1 (OK) when nothing changed.
func (c *Client) Service(ctx context.Context, hosts []string, args exe.ServiceArgs) (map[string]exe.Event, error) {
	return c.RunSync(ctx, exe.Request{Operate: exe.OpService, Targets: hosts, Service: args})
}

// Execute runs cmd with each host's sh -c and returns its exit code and
// output in each event's Exec (GET /execute).
func (c *Client) Execute(ctx context.Context, hosts []string, cmd string) (map[string]exe.Event, error) {
	return c.RunSync(ctx, exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: cmd}})
}

// Submit stores req as a job and returns its ID (POST /ping, /facter,
// /service, /execute, /deploy, /tasks: 201 {"jid"}); the job is stored
// before the answer, so Follow and Job find it at once. Refusals are
// *Error: 400 bad input, 404 unknown host, 409 a deploy or task holds a
// host, 501 the executor lacks the operation, 503 the queue is full.
// req.Timeout, when set, bounds the job's run: hosts not finished by
// then are stopped and FAILED, the job ends Failure "timed out after N
// seconds" (at most the server's max_timeout; more is a 400).
// req.Forks, when set, bounds the job's hosts at once, as ansible -f
// does: the server lowers a value above its concurrency, and the job's
// Forks says what it ran with; a task refuses it (400).
func (c *Client) Submit(ctx context.Context, req exe.Request) (string, error) {
	path, body, err := submitBody(req)
	if err != nil {
		return "", err
	}
	var out struct {
		JID string `json:"jid"`
	}
	if err := c.do(ctx, "POST", c.endpoint(nil, path), body, &out, http.StatusCreated); err != nil {
		return "", err
	}
	if out.JID == "" {
		return "", errors.New("POST " + path + ": the answer has no jid")
	}
	return out.JID, nil
}

// submitBody is the endpoint and JSON body of an async request (API.md,
// Endpoints).
func submitBody(req exe.Request) (string, map[string]any, error) {
	targets := req.Targets
	if targets == nil {
		targets = []string{}
	}
	body := map[string]any{"targets": targets}
	if req.Timeout > 0 {
		body["timeout"] = req.Timeout.Seconds()
	}
	if req.Forks != 0 {
		body["forks"] = req.Forks
	}
	switch req.Operate {
	case exe.OpPing, exe.OpFacter:
	case exe.OpService:
		body["name"], body["state"], body["graceful"] = req.Service.Name, req.Service.State, req.Service.Graceful
	case exe.OpExecute:
		body["cmd"] = req.Execute.Cmd
	case exe.OpDeploy:
		body["role"], body["partial"], body["extra_vars"] = req.Deploy.Role, req.Deploy.Partial, orEmpty(req.Deploy.ExtraVars)
	case exe.OpTask:
		body["taskname"], body["tasktype"], body["taskopts"] = req.Task.Name, req.Task.Type, orEmpty(req.Task.Options)
		return "tasks", body, nil
	default:
		return "", nil, fmt.Errorf("unknown operation %q", req.Operate)
	}
	return string(req.Operate), body, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// SubmitPing starts a ping job on hosts (POST /ping).
func (c *Client) SubmitPing(ctx context.Context, hosts ...string) (string, error) {
	return c.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: hosts})
}

// SubmitFacter starts a facts job on hosts (POST /facter).
func (c *Client) SubmitFacter(ctx context.Context, hosts ...string) (string, error) {
	return c.Submit(ctx, exe.Request{Operate: exe.OpFacter, Targets: hosts})
}

// SubmitService starts a service job on hosts (POST /service).
func (c *Client) SubmitService(ctx context.Context, hosts []string, args exe.ServiceArgs) (string, error) {
	return c.Submit(ctx, exe.Request{Operate: exe.OpService, Targets: hosts, Service: args})
}

// SubmitExecute starts a job running cmd on hosts (POST /execute).
func (c *Client) SubmitExecute(ctx context.Context, hosts []string, cmd string) (string, error) {
	return c.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: cmd}})
}

// SubmitDeploy starts a deploy of a role on hosts (POST /deploy): Partial
// are the tags to run (nil: all), ExtraVars the role's variables. A
// second deploy or task on a host it holds is a 409 *Error.
func (c *Client) SubmitDeploy(ctx context.Context, hosts []string, args exe.DeployArgs) (string, error) {
	return c.Submit(ctx, exe.Request{Operate: exe.OpDeploy, Targets: hosts, Deploy: args})
}

// SubmitTask starts a task of a type Tasks lists on hosts (POST /tasks);
// the server checks Options against the task's schema (400 naming the
// option) and fills in its defaults.
func (c *Client) SubmitTask(ctx context.Context, hosts []string, args exe.TaskArgs) (string, error) {
	return c.Submit(ctx, exe.Request{Operate: exe.OpTask, Targets: hosts, Task: args})
}

// Tasks lists the server's task plugins with their options (GET /tasks).
func (c *Client) Tasks(ctx context.Context) ([]exe.TaskInfo, error) {
	var out []exe.TaskInfo
	if err := c.do(ctx, "GET", c.endpoint(nil, "tasks"), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return out, nil
}

// Jobs lists the IDs of the jobs the caller may see, newest first (GET
// /jobs).
func (c *Client) Jobs(ctx context.Context) ([]string, error) {
	ids := []string{}
	if err := c.do(ctx, "GET", c.endpoint(nil, "jobs"), nil, &ids, http.StatusOK); err != nil {
		return nil, err
	}
	return ids, nil
}

// JobDetails lists the jobs the caller may see, newest first, without
// their outputs (GET /jobs?detail=1).
func (c *Client) JobDetails(ctx context.Context) ([]*exe.Job, error) {
	jobs := []*exe.Job{}
	if err := c.do(ctx, "GET", c.endpoint(url.Values{"detail": {"1"}}, "jobs"), nil, &jobs, http.StatusOK); err != nil {
		return nil, err
	}
	return jobs, nil
}

// Job returns a job (GET /jobs/{jid}); with outputs, its ReturnData holds
// every event so far grouped by host, each with Host set. An unknown job
// is a 404 *Error.
func (c *Client) Job(ctx context.Context, jid string, outputs bool) (*exe.Job, error) {
	q := url.Values{}
	if outputs {
		q.Set("outputs", "1")
	}
	var job exe.Job
	if err := c.do(ctx, "GET", c.endpoint(q, "jobs", jid), nil, &job, http.StatusOK); err != nil {
		return nil, err
	}
	return &job, nil
}

// Cancel cancels a running job and returns it as it ended: Failure,
// Error "cancelled", every host with its event (POST /jobs/{jid}/cancel,
// 202). A job that had already finished is a 409 *Error.
func (c *Client) Cancel(ctx context.Context, jid string) (*exe.Job, error) {
	var job exe.Job
	if err := c.do(ctx, "POST", c.endpoint(nil, "jobs", jid, "cancel"), nil, &job, http.StatusAccepted); err != nil {
		return nil, err
	}
	return &job, nil
}

// Delete deletes a finished job and its events (DELETE /jobs/{jid}, 204).
// A running job is a 409 *Error.
func (c *Client) Delete(ctx context.Context, jid string) error {
	return c.do(ctx, "DELETE", c.endpoint(nil, "jobs", jid), nil, nil, http.StatusNoContent)
}

// OpenAPI returns the server's OpenAPI 3 document of its API (GET
// /openapi.json, which needs no token), as JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	if err := c.do(ctx, "GET", c.endpoint(nil, "openapi.json"), nil, &doc, http.StatusOK); err != nil {
		return nil, err
	}
	return doc, nil
}

// Health is the answer of GET /healthz.
type Health struct {
	// Status is "ok", "degraded" (the server serves, but queued jobs wait
	// for a worker) or "unavailable" (the store or executor does not
	// answer).
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Health asks the server whether it works (GET /healthz, which needs no
// token). "ok" and "degraded" come with a nil error; "unavailable" (503)
// comes with its Health and an *Error of status 503.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	u := c.endpoint(nil, "healthz")
	req, err := c.newRequest(ctx, "GET", u, nil)
	if err != nil {
		return h, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return h, err
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		if err := jsonDecode(res, &h); err != nil {
			return h, err
		}
		return h, nil
	case http.StatusServiceUnavailable:
		err := readError(res).(*Error)
		h = Health{Status: "unavailable", Message: err.Message}
		return h, err
	}
	return h, readError(res)
}
