package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
)

// AuditRecord is one line of the audit trail. What a request carries as
// data (extra_vars, task option values) is never written: only the names
// of its keys.
type AuditRecord struct {
	Time time.Time `json:"time"`
	// Action is submit (an async job was asked for), run (a sync
	// operation), cancel, delete, end (a job this server took ended) or
	// deny (a request refused with 401, 403, or 404 for another user's
	// job).
	Action     string   `json:"action"`
	User       string   `json:"user"` // the authenticated name; "" when unknown (401) or without authentication
	RemoteAddr string   `json:"remote_addr,omitempty"`
	RequestID  string   `json:"request_id,omitempty"`
	Method     string   `json:"method,omitempty"`
	Path       string   `json:"path,omitempty"`
	Operation  string   `json:"operation,omitempty"`
	Targets    []string `json:"targets,omitempty"`
	Cmd        string   `json:"cmd,omitempty"`     // execute
	Service    string   `json:"service,omitempty"` // service
	Role       string   `json:"role,omitempty"`    // deploy
	Partial    []string `json:"partial,omitempty"` // deploy
	TaskType   string   `json:"task_type,omitempty"`
	TaskName   string   `json:"task_name,omitempty"`
	// OptionNames are the keys of extra_vars (deploy) or taskopts (task),
	// sorted; their values are never recorded.
	OptionNames []string `json:"option_names,omitempty"`
	JID         string   `json:"jid,omitempty"`
	// Outcome is accepted, refused, done, failure, denied, or cancelled
	// (the client went away before the answer: a sync run cut short,
	// status 499).
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"`  // the HTTP status answered
	Message string `json:"message,omitempty"` // why it was refused or failed
}

// Audit writes the audit trail: one JSON line per submitted job, sync
// operation, cancel, delete, denied request and end of a job submitted
// here. Its identity fields come from the server's authentication only.
// A nil *Audit records nothing.
type Audit struct {
	mu  sync.Mutex
	w   io.Writer
	log hclog.Logger
	now func() time.Time

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// NewAudit returns an audit trail written to w; write errors go to log.
func NewAudit(w io.Writer, log hclog.Logger) *Audit {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Audit{w: w, log: log, now: time.Now, ctx: ctx, stop: stop}
}

// Close waits, until ctx is done, for the jobs submitted through the API
// to end so their end lines are written (call it once the dispatcher has
// shut down: every job then has ended or will not end here), then stops
// waiting.
func (au *Audit) Close(ctx context.Context) {
	if au == nil {
		return
	}
	done := make(chan struct{})
	go func() { au.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		au.stop()
		<-done
	}
	au.stop()
}

func (au *Audit) write(rec AuditRecord) {
	if au == nil {
		return
	}
	rec.Time = au.now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		au.log.Error("audit record", "error", err)
		return
	}
	au.mu.Lock()
	defer au.mu.Unlock()
	if _, err := au.w.Write(append(b, '\n')); err != nil {
		au.log.Error("audit trail write failed", "error", err)
	}
}

// record is the base of a request's record: who, from where, what.
func record(r *http.Request, action string, req *exe.Request) AuditRecord {
	rec := AuditRecord{Action: action, RemoteAddr: r.RemoteAddr, RequestID: requestID(r),
		Method: r.Method, Path: r.URL.Path, User: exe.UserFrom(r.Context())}
	if req != nil {
		describe(&rec, *req)
	}
	return rec
}

// describe fills in what req runs, with the names (never the values) of
// its extra_vars and task options.
func describe(rec *AuditRecord, req exe.Request) {
	rec.Operation = string(req.Operate)
	rec.Targets = req.Targets
	switch req.Operate {
	case exe.OpExecute:
		rec.Cmd = req.Execute.Cmd
	case exe.OpService:
		rec.Service = req.Service.Name
	case exe.OpDeploy:
		rec.Role, rec.Partial = req.Deploy.Role, req.Deploy.Partial
		rec.OptionNames = keys(req.Deploy.ExtraVars)
	case exe.OpTask:
		rec.TaskType, rec.TaskName = req.Task.Type, req.Task.Name
		rec.OptionNames = keys(req.Task.Options)
	}
}

func keys(m map[string]any) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// deny records a refused request. req, when known, says what was asked.
func (au *Audit) deny(r *http.Request, req *exe.Request, status int, msg string) {
	if au == nil {
		return
	}
	rec := record(r, "deny", req)
	if status == http.StatusUnauthorized {
		rec.User = "" // no identity was established
	}
	rec.Outcome, rec.Status, rec.Message = "denied", status, msg
	au.write(rec)
}

// revoked records a follow ended because the credential it was opened
// with no longer allows it (endForCredential: a reload revoked or
// narrowed it): a 401 whose user is the one the stream was opened as.
func (au *Audit) revoked(r *http.Request, msg string) {
	if au == nil {
		return
	}
	rec := record(r, "deny", nil)
	rec.Outcome, rec.Status, rec.Message = "denied", http.StatusUnauthorized, msg
	au.write(rec)
}

// done records a request that was answered: err nil for success; an err
// of the client's going away (clientGone) is "cancelled", 499.
func (au *Audit) done(r *http.Request, action string, req *exe.Request, jid string, err error) {
	if au == nil {
		return
	}
	rec := record(r, action, req)
	rec.JID = jid
	switch {
	case err != nil && clientGone(r, err):
		rec.Outcome, rec.Status, rec.Message = "cancelled", statusClientClosed, msgClientClosed
	case err != nil:
		rec.Outcome, rec.Status, rec.Message = "refused", statusOf(err), exe.PublicMessage(err)
	default:
		rec.Outcome = "accepted"
	}
	au.write(rec)
}

// watch records the end of a job submitted through this server, with the
// submitting request's identity: it follows the job until it ends, or
// until Close stops waiting.
func (au *Audit) watch(engine *exe.Engine, r *http.Request, req exe.Request, jid string) {
	if au == nil {
		return
	}
	base := record(r, "end", &req)
	base.Method, base.Path = "", ""
	base.JID = jid
	au.wg.Add(1)
	go func() {
		defer au.wg.Done()
		job, err := engine.Follow(au.ctx, jid, func(exe.Event) error { return nil })
		rec := base
		switch {
		case err != nil:
			if au.ctx.Err() != nil || errors.Is(err, exe.ErrShutdown) {
				return // the server stops before the job ends here
			}
			rec.Outcome, rec.Message = "unknown", exe.PublicMessage(err)
		case job.State == exe.JobDone:
			rec.Outcome = "done"
		default:
			rec.Outcome, rec.Message = "failure", job.Error
		}
		au.write(rec)
	}()
}
