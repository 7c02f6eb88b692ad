package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/0ops/exed/exe"
)

// Follow streams come in two formats: NDJSON (application/x-ndjson, the
// seed's, and the default) and Server-Sent Events (text/event-stream, the
// HTML standard's, which a browser's EventSource reads and resumes). Both
// carry the same JSON: the job object, one {"host": event} per event,
// then the final job object (API.md, Follow mode).
const (
	ndjsonType = "application/x-ndjson"
	sseType    = "text/event-stream"
)

// sseRetry is the reconnection delay an event stream asks of browsers
// (its "retry:" field), in milliseconds.
const sseRetry = 2000

// DefaultStreamKeepAlive is Options.StreamKeepAlive's default: shorter
// than the idle timeouts of common proxies (nginx's proxy_read_timeout is
// 60 s).
const DefaultStreamKeepAlive = 15 * time.Second

// followQuery reads where a follow resumes and in which format: the query's
// from (an event's Seq, default 0: every event) and, for an event stream,
// the Last-Event-ID header a reconnecting EventSource sends, the later of
// the two. A value that is not an integer >= 0 is an ErrInvalid naming it.
func followQuery(r *http.Request) (from int64, sse bool, err error) {
	q := r.URL.Query()
	if q.Has("from") {
		if from, err = parseSeq("from", q.Get("from")); err != nil {
			return 0, false, err
		}
	}
	sse = acceptsEventStream(r.Header.Values("Accept"))
	// An EventSource keeps the URL it was opened with (from included)
	// and adds the id of the last event it received when it reconnects,
	// so the later of the two is where the stream resumes.
	if id := r.Header.Get("Last-Event-ID"); sse && id != "" {
		last, err := parseSeq("Last-Event-ID", id)
		if err != nil {
			return 0, false, err
		}
		from = max(from, last)
	}
	return from, sse, nil
}

// parseSeq reads an event sequence number: a decimal integer >= 0.
func parseSeq(name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(v, "+") {
		return 0, exe.Errorf(exe.ErrInvalid, "%s: %q is not an event sequence number: give an integer >= 0 (the last event already received; 0: every event)", name, clip(v, 32))
	}
	return n, nil
}

// acceptsEventStream reports whether Accept asks for an event stream:
// text/event-stream with a q above 0, and above application/x-ndjson's
// when that is named too. Wildcards keep the default, NDJSON.
func acceptsEventStream(accept []string) bool {
	sse, ndjson := -1.0, -1.0
	for _, h := range accept {
		for part := range strings.SplitSeq(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil {
					continue
				}
			}
			switch mt {
			case sseType:
				sse = max(sse, q)
			case ndjsonType:
				ndjson = max(ndjson, q)
			}
		}
	}
	return sse > 0 && sse > ndjson
}

// follow streams a job: the job object, then each event whose Seq is
// above from, then the final job object, as NDJSON lines or, with sse,
// as Server-Sent Events. Each line is flushed as written; the stream ends
// when the job does or the client leaves. A stream that ends before its
// job does (the server shuts down, the store stays unreachable, the job
// vanishes, the credential it was opened with no longer allows it) ends
// with the job object as last known, still Running, plus "message"
// saying why: a client that reads the last line as the final job sees
// that the job has not ended, and follows again (or authenticates again).
func (a *API) follow(w http.ResponseWriter, r *http.Request, jid string, from int64, sse bool) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	if down := a.serverShutdown(r); down != nil {
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
	s := &stream{w: w, rc: http.NewResponseController(w), sse: sse, lineTimeout: a.opts.LineTimeout}
	contentType := ndjsonType
	if sse {
		contentType = sseType
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept")          // the format depends on it
	w.Header().Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if err := s.write(sseJob, 0, job); err != nil {
		return
	}
	if sse && a.opts.StreamKeepAlive > 0 {
		stop := s.keepAlive(a.opts.StreamKeepAlive, func(err error) { cancel(err) })
		defer stop()
	}
	check := a.stillAllowed(r, job)
	allowed := check.allowed
	if a.authn.reloads() {
		// A stream with nothing to send ends as soon as a reload revokes
		// its credential, not at its next event, which may never come.
		stop := endOnRevocation(ctx, check, func(end *credentialEnd) { cancel(end) })
		defer stop()
	}
	var writeErr error
	final, err := a.engine.FollowBatches(ctx, jid, from, func(batch []exe.Event) error {
		writeErr = s.writeEvents(&a.lines, jid, batch, allowed)
		return writeErr
	})
	end := credentialEndOf(context.Cause(ctx), writeErr)
	if end == nil && err == nil {
		if end = allowed(); end == nil {
			_ = s.write(sseDone, 0, final)
			return
		}
	}
	if end != nil {
		a.endForCredential(r, s, jid, job, end)
		return
	}
	if writeErr != nil || s.failed() {
		return // the client is gone, or too slow to take a line
	}
	reason := followEndReason(ctx, err)
	if ctx.Err() == nil && !errors.Is(err, exe.ErrNotFound) && !errors.Is(err, exe.ErrShutdown) {
		a.log.Warn("follow stream ended early", "jid", jid, "error", err)
	}
	// Best effort: a client that left gets nothing, and needs nothing.
	_ = s.write(sseEnd, 0, streamEnd{job: job, message: "stream ended: " + reason})
}

// credentialEnd is why a follow stream ends when the credential it was
// opened with no longer lets it go on. Whatever checks the credential
// (stillAllowed at each write and reload; another check may cancel the
// stream's context with a *credentialEnd of its own) ends the stream the
// same way, endForCredential: a last line, the job as the stream first
// sent it with "message": "stream ended: " + message, and a 401 denial
// in the audit trail.
type credentialEnd struct {
	message string // for the client: why, and what to do
	audit   string // for the audit trail, after "follow of job J ended: "
}

func (e *credentialEnd) Error() string { return e.audit }

// The ends of a follow whose credential a reload of the credentials
// took away (errRevoked: the token or cert: line is gone, so following
// again is 401) or narrowed (errNarrowed: it may no longer read this
// job, so following again is 403 or 404).
var (
	errRevoked  = &credentialEnd{message: "credentials revoked: authenticate again", audit: reloadedAway}
	errNarrowed = &credentialEnd{message: "the credentials reloaded no longer allow following this job", audit: reloadedAway}
)

const reloadedAway = "the credentials reloaded no longer allow it"

// credentialEndOf returns the *credentialEnd among errs, nil if none.
func credentialEndOf(errs ...error) *credentialEnd {
	for _, err := range errs {
		var end *credentialEnd
		if errors.As(err, &end) {
			return end
		}
	}
	return nil
}

// endForCredential ends a follow of jid that the credential it was opened
// with no longer allows: the one place that writes such a stream's last
// line, whatever took the credential away. The line is the job as the
// stream's first line had it, which the caller was allowed to read, with
// the message: nothing the caller may no longer read is sent. Best
// effort, as every last line: a client that left gets nothing.
func (a *API) endForCredential(r *http.Request, s *stream, jid string, job *exe.Job, end *credentialEnd) {
	a.audit.revoked(r, "follow of job "+jid+" ended: "+end.audit)
	_ = s.write(sseEnd, 0, streamEnd{job: job, message: "stream ended: " + end.message})
}

// stillAllowed returns a check, made before each write of a follow and at
// each reload (endOnRevocation), that the credentials and client CAs in
// force still let r's caller follow job: a reload that revokes a token
// (or narrows it), or rotates out the CA of the connection's certificate,
// ends the streams it had open at once, as it refuses its next request,
// whether or not they had a line to send; so does the expiry of the
// connection's certificate. Its allowed returns nil while they do, else
// errRevoked (no identity any more), errNarrowed, or the end of a
// certificate that no longer verifies. The first check looks up the
// caller in the credentials then in force, since a reload may have come
// after the request was let in (the stream's first line is written
// before the first check); later ones look again only when the
// credentials or the client CAs have been reloaded, or the certificate
// has expired.
func (a *API) stillAllowed(r *http.Request, job *exe.Job) *followCheck {
	return &followCheck{authn: a.authn, r: r, job: job}
}

// followCheck is stillAllowed's check. The stream's writer and
// endOnRevocation both make it.
type followCheck struct {
	authn *authenticator
	r     *http.Request
	job   *exe.Job

	mu      sync.Mutex
	checked bool           // once: seen is set
	seen    authState      // of the last look-up
	until   time.Time      // the connection's certificate verifies until then; zero: none
	end     *credentialEnd // once set, for good
}

func (c *followCheck) allowed() *credentialEnd {
	if !c.authn.reloads() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.end != nil {
		return c.end
	}
	expired := !c.until.IsZero() && time.Now().After(c.until)
	if st := c.authn.state(); !c.checked || st != c.seen || expired {
		c.checked, c.seen = true, st
		if c.authn.cas != nil {
			until, err := c.authn.cas.VerifyUntil(c.r.TLS)
			if err != nil {
				c.end = &credentialEnd{message: err.Error() + ": connect again with a valid certificate", audit: err.Error()}
				return c.end
			}
			c.until = until
		}
		switch id, _ := c.authn.identify(c.r); {
		case id == nil:
			c.end = errRevoked
		case !id.CanRead() || !visible(id, c.job):
			c.end = errNarrowed
		}
	}
	return c.end
}

// expires is when allowed must look again though nothing was reloaded:
// the connection's certificate expires then. Zero: never.
func (c *followCheck) expires() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until
}

// endOnRevocation makes check whenever the credentials or the client CAs
// change and when the connection's certificate expires, and calls
// revoked with its end when it no longer holds, until ctx ends or the
// returned stop is called.
func endOnRevocation(ctx context.Context, check *followCheck, revoked func(*credentialEnd)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			creds, cas := check.authn.changed() // before the check: a reload after it closes these
			if end := check.allowed(); end != nil {
				revoked(end)
				return
			}
			var expiry <-chan time.Time
			var timer *time.Timer
			if until := check.expires(); !until.IsZero() {
				timer = time.NewTimer(time.Until(until))
				expiry = timer.C
			}
			select {
			case <-creds:
			case <-cas:
			case <-expiry:
			case <-ctx.Done():
			}
			if timer != nil {
				timer.Stop()
			}
			if ctx.Err() != nil {
				return
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// The event names of an event stream (the "event:" field).
const (
	sseJob  = "job"  // the job object the stream starts with
	sseHost = "host" // {"host": event}, with "id:" the event's Seq
	sseDone = "done" // the final job object: the job has ended
	sseEnd  = "end"  // the stream ended before the job: follow again
)

// stream writes the lines of one follow. Its writes are serialised: the
// keep-alive comments of an event stream come from a goroutine of their
// own.
type stream struct {
	w           http.ResponseWriter
	rc          *http.ResponseController
	sse         bool
	lineTimeout time.Duration

	buf bytes.Buffer // writeEvents's, reused

	mu       sync.Mutex
	started  bool      // the event stream's retry field is sent
	last     time.Time // of the last write
	deadline time.Time // the write deadline set last
	err      error     // of a write; the stream is over
}

// write sends v as one NDJSON line, or as an event named name with id
// (when above 0) as its "id:" field, and flushes it.
func (s *stream) write(name string, id int64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	s.frame(&buf, name, id, b)
	return s.send(buf.Bytes())
}

// flushAt is the most a follow stream buffers of a batch of events
// before it writes: a long backlog goes out in writes of about this size.
const flushAt = 32 << 10

// writeEvents sends the events of a batch, each as {"host": event}, and
// flushes once per flushAt bytes and at the end: one write for the events
// that arrived together, instead of one per event. Each write is made
// only if allowed still holds, else it is allowed's *credentialEnd: a
// reload that revokes the stream's credential while it sends a long
// backlog ends it there, not at the end of the backlog.
func (s *stream) writeEvents(lines *eventLines, jid string, batch []exe.Event, allowed func() *credentialEnd) error {
	buf := &s.buf
	defer func() {
		if buf.Cap() > 2*flushAt {
			*buf = bytes.Buffer{} // a backlog's: not kept for a live stream
		}
	}()
	buf.Reset()
	for _, ev := range batch {
		b, err := lines.line(jid, ev)
		if err != nil {
			return err
		}
		s.frame(buf, sseHost, ev.Seq, b)
		if buf.Len() >= flushAt {
			if end := allowed(); end != nil {
				return end
			}
			if err := s.send(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	if end := allowed(); end != nil {
		return end
	}
	return s.send(buf.Bytes())
}

// frame appends the JSON text b to buf as one NDJSON line, or as an event
// named name with id (when above 0) as its "id:" field.
func (s *stream) frame(buf *bytes.Buffer, name string, id int64, b []byte) {
	if !s.sse {
		buf.Write(b)
		buf.WriteByte('\n')
		return
	}
	s.mu.Lock()
	if !s.started {
		// Once, at the start: how long a browser waits before it
		// reconnects.
		buf.WriteString("retry: " + strconv.Itoa(sseRetry) + "\n")
		s.started = true
	}
	s.mu.Unlock()
	if id > 0 {
		buf.WriteString("id: ")
		buf.WriteString(strconv.FormatInt(id, 10))
		buf.WriteByte('\n')
	}
	// JSON text holds no raw line breaks, so one data field carries it.
	buf.WriteString("event: ")
	buf.WriteString(name)
	buf.WriteString("\ndata: ")
	buf.Write(b)
	buf.WriteString("\n\n")
}

// send writes and flushes p with the line deadline.
func (s *stream) send(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	// Every line gets at least 7/8 of the line timeout: the deadline is
	// moved only when less is left, not at every line (setting one costs
	// as much as encoding a line).
	// Not every writer supports deadlines (httptest recorders); that is
	// fine, the context still ends the stream.
	now := time.Now()
	if s.deadline.Sub(now) < s.lineTimeout-s.lineTimeout/8 {
		s.deadline = now.Add(s.lineTimeout)
		_ = s.rc.SetWriteDeadline(s.deadline)
	}
	_, err := s.w.Write(p)
	if err == nil {
		err = s.rc.Flush()
	}
	s.err, s.last = err, now
	return err
}

// failed reports whether a write failed.
func (s *stream) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// keepAlive sends a comment line whenever the stream has been silent for
// every, so that proxies and browsers do not take an idle stream for a
// dead one, until the returned stop is called; a comment that cannot be
// written calls gone.
func (s *stream) keepAlive(every time.Duration, gone func(error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTimer(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s.mu.Lock()
			idle := time.Since(s.last)
			s.mu.Unlock()
			if idle < every {
				t.Reset(every - idle) // a line went out meanwhile
				continue
			}
			if err := s.send([]byte(": keepalive\n\n")); err != nil {
				gone(err)
				return
			}
			t.Reset(every)
		}
	})
	return func() { close(done); wg.Wait() }
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
