package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/0ops/exed/exe"
)

// target lists the hosts a pattern selects.
func (a *API) target(w http.ResponseWriter, r *http.Request) {
	hosts, err := a.engine.Match(r.Context(), r.URL.Query().Get("pattern"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	hosts, err = a.filterHosts(r, hosts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hosts)
}

// syncOp runs an operation in this process and answers {"host": event}.
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
		if !a.permit(w, r, req) {
			return
		}
		jid, err := a.engine.Submit(r.Context(), req)
		a.audit.done(r, "submit", &req, jid, err)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.audit.watch(a.engine, r, req, jid)
		w.Header().Set("Location", a.opts.Prefix+"/jobs/"+jid)
		writeJSON(w, http.StatusCreated, map[string]string{"jid": jid})
	}
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
	q := r.URL.Query()
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
		a.follow(w, r, jid)
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

// follow streams a job as NDJSON: the job object, then every event as
// {"host": event} from the first one, then the final job object. Each line is
// flushed as written; the stream ends when the job does or the client leaves.
// A stream that ends before its job does (the server shuts down, the store
// stays unreachable, the job vanishes) ends with the job object as last
// known, still Running, plus "message" saying why: a client that reads the
// last line as the final job sees that the job has not ended, and follows
// again.
func (a *API) follow(w http.ResponseWriter, r *http.Request, jid string) {
	ctx := r.Context()
	if down := a.serverShutdown(r); down != nil {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		stop := context.AfterFunc(down, func() { cancel(context.Cause(down)) })
		defer stop()
	}
	job, err := a.visibleJob(r, jid, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if obs := a.opts.Observer; obs != nil {
		obs.FollowStreams(1)
		defer obs.FollowStreams(-1)
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	line := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		// Not every writer supports deadlines (httptest recorders); that is
		// fine, the context still ends the stream.
		_ = rc.SetWriteDeadline(time.Now().Add(a.opts.LineTimeout))
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := line(job); err != nil {
		return
	}
	var writeErr error
	final, err := a.engine.Follow(ctx, jid, func(ev exe.Event) error {
		writeErr = line(map[string]exe.Event{ev.Host: ev})
		return writeErr
	})
	if err == nil {
		_ = line(final)
		return
	}
	if writeErr != nil {
		return // the client is gone, or too slow to take a line
	}
	reason := followEndReason(ctx, err)
	if ctx.Err() == nil && !errors.Is(err, exe.ErrNotFound) && !errors.Is(err, exe.ErrShutdown) {
		a.log.Warn("follow stream ended early", "jid", jid, "error", err)
	}
	// Best effort: a client that left gets nothing, and needs nothing.
	_ = line(streamEnd{job: job, message: "stream ended: " + reason})
}

// followEndReason says why a follow ended with err before its job did:
// its server or its Engine shuts down (see API), the client left, the job
// is gone, or the store failed.
func followEndReason(ctx context.Context, err error) string {
	switch {
	case errors.Is(context.Cause(ctx), exe.ErrShutdown), errors.Is(err, exe.ErrShutdown):
		return "server shutting down"
	case ctx.Err() != nil:
		return "stream cancelled"
	case errors.Is(err, exe.ErrNotFound):
		return "the job is gone (deleted, expired, or lost by the job store)"
	}
	return exe.PublicMessage(err)
}

// streamEnd is a follow stream's last line when it ends before its job:
// the job object with "message" added.
type streamEnd struct {
	job     *exe.Job
	message string
}

func (e streamEnd) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(e.job)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	fields["message"], err = json.Marshal(e.message)
	if err != nil {
		return nil, err
	}
	return json.Marshal(fields)
}

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
