package http

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
)

// permission is what an endpoint needs before its handler runs. The
// operation endpoints need the operation itself, checked by permit once
// the request is decoded.
type permission int

const (
	permNone    permission = iota // checked in the handler (operations)
	permRead                      // list, read, follow; targets; task types
	permChange                    // cancel, delete: any operation, then the job's own (permitJob)
	permMetrics                   // the metrics endpoint
)

// permissionOf maps a route to the permission it needs: every route but
// the public ones has one, so no endpoint is served without a check.
func permissionOf(rt route) permission {
	switch {
	case rt.path == "/metrics":
		return permMetrics
	case rt.method == "DELETE", strings.HasSuffix(rt.path, "/cancel"):
		return permChange
	case rt.method == "GET" && (rt.path == "/target" || rt.path == "/tasks" || strings.HasPrefix(rt.path, "/jobs")):
		return permRead
	}
	return permNone
}

func (p permission) check(id *auth.Identity) string {
	switch p {
	case permRead:
		if !id.CanRead() {
			return "reading jobs, targets and task types is not allowed"
		}
	case permChange:
		if !id.CanChange() {
			return "cancelling and deleting jobs is not allowed (read-only)"
		}
	case permMetrics:
		if !id.CanMetrics() {
			return "reading metrics is not allowed (it takes the metrics permission)"
		}
	}
	return ""
}

// forbid answers 403 with what is not allowed, and records the refusal.
// The message names the refused operation or the requested targets the
// credential may not use, never anything about the inventory or jobs.
func (a *API) forbid(w http.ResponseWriter, r *http.Request, msg string) {
	a.audit.deny(r, nil, http.StatusForbidden, msg)
	writeMessage(w, http.StatusForbidden, "not allowed: "+msg)
}

// permit answers 403, and returns false, when the caller may not run req:
// its operation, role or task type, or a target outside the caller's
// hosts. It runs before the engine looks at the targets, so whether a
// host outside them exists never shows.
func (a *API) permit(w http.ResponseWriter, r *http.Request, req exe.Request) bool {
	id := identityOf(r)
	msg := id.AllowRequest(req)
	if msg == "" {
		var err error
		msg, err = a.outsideHosts(r.Context(), id, req.Targets)
		if err != nil {
			a.writeError(w, r, err)
			return false
		}
	}
	if msg == "" {
		return true
	}
	a.audit.deny(r, &req, http.StatusForbidden, msg)
	writeMessage(w, http.StatusForbidden, "not allowed: "+msg)
	return false
}

// outsideHosts says which of targets the identity's host pattern does not
// select, or "" when it selects them all.
func (a *API) outsideHosts(ctx context.Context, id *auth.Identity, targets []string) (string, error) {
	if id.Hosts == "" {
		return "", nil
	}
	allowed, err := a.allowedHosts(ctx, id)
	if err != nil {
		return "", err
	}
	var out []string
	for _, t := range targets {
		if !allowed[t] {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return "", nil
	}
	sort.Strings(out)
	return "targets outside the hosts this credential may use: " + clip(strings.Join(out, ", "), 256), nil
}

// allowedHosts is the set of hosts the identity's pattern selects in the
// inventory as it is now (nil with no pattern: every host).
func (a *API) allowedHosts(ctx context.Context, id *auth.Identity) (map[string]bool, error) {
	if id.Hosts == "" {
		return nil, nil
	}
	hosts, err := a.engine.Match(ctx, id.Hosts)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		set[h] = true
	}
	return set, nil
}

// visible reports whether the caller may see job: a credential limited
// to its own jobs sees only those submitted under its name.
func visible(id *auth.Identity, job *exe.Job) bool {
	return !id.OwnJobs || job.User == id.Name
}

// visibleJob returns the job when the caller may see it; another user's
// job is exe.ErrNotFound, answered exactly as a job that does not exist.
func (a *API) visibleJob(r *http.Request, jid string, outputs bool) (*exe.Job, error) {
	job, err := a.engine.Job(r.Context(), jid, outputs)
	if err != nil {
		return nil, err
	}
	if id := identityOf(r); !visible(id, job) {
		a.audit.deny(r, nil, http.StatusNotFound, "job "+jid+" of another user")
		return nil, exe.ErrNotFound
	}
	return job, nil
}

// permitJob answers 404 for a job the caller may not see, 403 for one
// whose operation or hosts it may not use, and returns the job otherwise:
// cancelling or deleting a job takes the right to run it.
func (a *API) permitJob(w http.ResponseWriter, r *http.Request, jid string) (*exe.Job, bool) {
	job, err := a.visibleJob(r, jid, false)
	if err != nil {
		a.writeError(w, r, err)
		return nil, false
	}
	return job, a.permit(w, r, job.Request)
}

// filterHosts keeps the hosts the caller's pattern selects.
func (a *API) filterHosts(r *http.Request, hosts []string) ([]string, error) {
	allowed, err := a.allowedHosts(r.Context(), identityOf(r))
	if err != nil || allowed == nil {
		return hosts, err
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if allowed[h] {
			out = append(out, h)
		}
	}
	return out, nil
}

// visibleIDs filters job IDs down to those the caller may see.
func (a *API) visibleIDs(r *http.Request, ids []string) ([]string, error) {
	id := identityOf(r)
	if !id.OwnJobs {
		return ids, nil
	}
	out := make([]string, 0, len(ids))
	for _, jid := range ids {
		job, err := a.engine.Job(r.Context(), jid, false)
		if errors.Is(err, exe.ErrNotFound) {
			continue // expired while listing
		}
		if err != nil {
			return nil, err
		}
		if visible(id, job) {
			out = append(out, jid)
		}
	}
	return out, nil
}

// visibleJobs filters jobs down to those the caller may see.
func visibleJobs(id *auth.Identity, jobs []*exe.Job) []*exe.Job {
	if !id.OwnJobs {
		return jobs
	}
	out := jobs[:0]
	for _, j := range jobs {
		if visible(id, j) {
			out = append(out, j)
		}
	}
	return out
}
