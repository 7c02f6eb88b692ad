package http

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/0ops/exed/exe"
)

// target lists the hosts a pattern selects.
func (a *API) target(w http.ResponseWriter, r *http.Request) {
	// Shared with the Engine's cache: only read (filterHosts makes a list
	// of its own), and written out.
	hosts, err := a.engine.MatchShared(r.Context(), r.URL.Query().Get("pattern"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	hosts, err = a.filterHosts(r, hosts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeStrings(w, http.StatusOK, hosts)
}

// syncOp runs an operation in this process and answers {"host": event};
// 499 when its client went away before the hosts were done.
func (a *API) syncOp(op exe.Operate) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := queryRequest(op, r.URL.Query())
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if !a.permit(w, r, req) {
			return
		}
		out, err := a.engine.RunSync(r.Context(), req)
		if gone := r.Context().Err(); gone != nil {
			if _, known := exe.KindOf(err); err == nil || !known {
				// The client went away while the hosts ran. RunSync
				// stopped them and answers as for a run that ended
				// (each stopped host "cancelled"), or with the
				// executor's interruption in its own words: either way
				// the request was cut short, which is a 499 (API.md),
				// in the audit trail, the access log and the metrics
				// too, not a 200 no one reads.
				err = gone
			}
		}
		a.audit.done(r, "run", &req, "", err)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// asyncOp stores and dispatches a job and answers 201 {"jid": ...}.
func (a *API) asyncOp(op exe.Operate) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)
		req, err := decodeBody(op, r.Header.Get("Content-Type"), body)
		switch {
		case errors.Is(err, errUnsupportedType):
			writeMessage(w, http.StatusUnsupportedMediaType, err.Error())
			return
		case errors.Is(err, errTooLarge):
			writeMessage(w, http.StatusRequestEntityTooLarge, "request body is larger than the limit of "+byteSize(a.opts.MaxBodyBytes))
			return
		case err != nil:
			a.writeError(w, r, err)
			return
		}
		// The bounds may come in the query too; the query's other
		// parameters are ignored, as they always were.
		if err := queryBounds(query(r), &req); err != nil {
			a.writeError(w, r, err)
			return
		}
		if !a.permit(w, r, req) {
			return
		}
		jid, err := a.engine.Submit(r.Context(), req)
		a.audit.done(r, "submit", &req, jid, err)
		if err != nil {
			a.writeError(w, r, a.hideOthersJob(r, err))
			return
		}
		a.audit.watch(a.engine, r, req, jid)
		w.Header().Set("Location", a.opts.Prefix+"/jobs/"+jid)
		writeSubmitted(w, jid)
	}
}

// submitted is the answer to a submit, {"jid": "..."}.
type submitted struct {
	JID string `json:"jid"`
}

// writeSubmitted answers 201 with submitted{jid}: the bytes writeJSON
// writes for it, without encoding/json's reflection, in one allocation.
func writeSubmitted(w http.ResponseWriter, jid string) {
	b := make([]byte, 0, len(`{"jid":""}`)+len(jid)+1)
	b = appendJSONString(append(b, `{"jid":`...), jid)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(append(b, '}', '\n'))
}

// query is r's query parameters; nil, which reads as empty, for a request
// without a query (most), where r.URL.Query would make an empty map.
func query(r *http.Request) url.Values {
	if r.URL.RawQuery == "" {
		return nil
	}
	return r.URL.Query()
}

// hideOthersJob keeps a conflict from naming a job the caller may not see
// (another user's, to a credential limited to its own jobs): the host is
// locked, by whom is not its business. The audit trail keeps the job.
func (a *API) hideOthersJob(r *http.Request, err error) error {
	var conflict *exe.ConflictError
	id := identityOf(r)
	if !id.OwnJobs || !errors.As(err, &conflict) {
		return err
	}
	if job, jerr := a.engine.Job(r.Context(), conflict.JID, false); jerr == nil && visible(id, job) {
		return err
	}
	return conflict.Anonymous()
}

func (a *API) tasks(w http.ResponseWriter, r *http.Request) {
	infos, err := a.engine.TaskInfos(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, infos)
}

func (a *API) jobs(w http.ResponseWriter, r *http.Request) {
	detail, err := parseBool(r.URL.Query(), "detail")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if detail {
		jobs, err := a.engine.JobDetails(r.Context())
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, visibleJobs(identityOf(r), jobs))
		return
	}
	ids, err := a.engine.Jobs(r.Context())
	if err == nil {
		ids, err = a.visibleIDs(r, ids)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ids)
}

func (a *API) job(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	outputs, err := parseBool(q, "outputs")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	follow, err := parseBool(q, "follow")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	jid := r.PathValue("jid")
	if follow {
		from, sse, err := followQuery(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.follow(w, r, jid, from, sse)
		return
	}
	if q.Has("from") {
		a.writeError(w, r, exe.Errorf(exe.ErrInvalid, "from: only with follow=1 (it says where a follow stream resumes)"))
		return
	}
	job, err := a.visibleJob(r, jid, outputs)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

func (a *API) deleteJob(w http.ResponseWriter, r *http.Request) {
	jid := r.PathValue("jid")
	job, ok := a.permitJob(w, r, jid)
	if !ok {
		return
	}
	err := a.engine.Delete(r.Context(), jid)
	a.audit.done(r, "delete", &job.Request, jid, err)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) cancelJob(w http.ResponseWriter, r *http.Request) {
	jid := r.PathValue("jid")
	asked, ok := a.permitJob(w, r, jid)
	if !ok {
		return
	}
	job, err := a.engine.Cancel(r.Context(), jid)
	a.audit.done(r, "cancel", &asked.Request, jid, err)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, job)
}

// health answers 200 {"status": "ok"}; 200 {"status": "degraded",
// "message"} when the server serves but not all of its work gets done (no
// worker takes queued jobs): taking this server out of a load balancer, or
// restarting it, would not help, so its status code stays 200 and
// monitors read the body; 503 {"status": "unavailable", "message"} when a
// part it needs (the store, the executor) does not answer.
//
// The check does not end with the request's context: net/http cancels that
// when the client half-closes its connection (a probe that sends its
// request and shuts down its write side), and a check cut short would
// report the server unavailable. healthTimeout bounds it instead.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), healthTimeout)
	defer cancel()
	err := a.engine.Health(ctx)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case errors.Is(err, exe.ErrDegraded) && !errors.Is(err, exe.ErrUnavailable):
		writeJSON(w, http.StatusOK, map[string]string{"status": "degraded", "message": exe.PublicMessage(err)})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "message": exe.PublicMessage(err)})
	}
}

// healthTimeout bounds a /healthz check: a part that has not answered by
// then is unavailable.
const healthTimeout = 10 * time.Second

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
