// Package openapitest checks HTTP exchanges with exed's API against its
// OpenAPI document (transport/http's OpenAPI, docs/openapi.json), so that
// the tests that talk to the API also prove the document says what the
// server does.
//
// Handler wraps the handler a test serves: each request and its answer,
// as the server saw them, are checked once the answer is complete, and
// each disagreement fails the test. The rules (Checker.Check):
//
//   - an answer for a path and method of the document must be one of the
//     operation's documented statuses, with its documented content type,
//     headers and body schema; an NDJSON stream is checked line by line
//     against the media type's schema, an event stream event by event
//     against the schema its x-events extension names for each event;
//   - a request the document refuses (a parameter or body outside its
//     schema) must be refused by the server too (a 4xx): a 2xx answer to it
//     means the document is stricter than the server (a body without a
//     Content-Type is read as JSON, as the server reads it);
//   - an answer for anything the document does not describe (another
//     path, another method) must be an error of the document's Error
//     schema: 400, 403, 404 or 405 (with Allow, but to CONNECT).
//
// Every checked exchange is noted (Covered), so a test run can tell which
// operations its traffic reached.
package openapitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	exehttp "github.com/0ops/exed/transport/http"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Load parses and validates the API's OpenAPI document.
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(exehttp.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

// Checker checks exchanges with an API mounted under a prefix.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
	prefix string
}

// New returns a Checker for the API mounted under prefix ("" for the
// root, "/exe" as in Options.Prefix).
func New(prefix string) (*Checker, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	// The document's server is "." (wherever it is served from); the
	// prefix is stripped before routing instead.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &Checker{doc: doc, router: router, prefix: strings.TrimRight(prefix, "/")}, nil
}

// Exchange is one request and the answer to it, as the server saw them.
type Exchange struct {
	Request *http.Request
	Body    []byte // the request's body
	Status  int
	Header  http.Header // the answer's, as sent with its status
	Answer  []byte      // the answer's body
}

// Check returns what, in ex, the document does not describe; nil when
// it describes all of it. Exchanges outside the prefix are not the API's
// and pass.
func (c *Checker) Check(ex Exchange) error {
	path := ex.Request.URL.Path
	if c.prefix != "" {
		rest, ok := strings.CutPrefix(path, c.prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			return nil
		}
		path = rest
	}
	rreq := ex.Request.Clone(context.Background())
	rreq.URL = &url.URL{Path: path, RawQuery: ex.Request.URL.RawQuery}
	rreq.Body = io.NopCloser(bytes.NewReader(ex.Body))
	if len(ex.Body) > 0 && rreq.Header.Get("Content-Type") == "" {
		// The server reads a body without a type as JSON (API.md).
		rreq.Header.Set("Content-Type", "application/json")
	}
	head := rreq.Method == http.MethodHead
	if head {
		rreq.Method = http.MethodGet // GET routes that only read answer HEAD
	}
	route, params, err := c.router.FindRoute(rreq)
	if err == nil && head && ex.Status == http.StatusMethodNotAllowed {
		// A GET that runs an operation refuses HEAD: to the document,
		// which has no HEAD operation, a method the path does not serve.
		err = errors.New("HEAD of a GET that runs an operation")
	}
	if err != nil {
		note(ex.Request.Method+" (not in the document)", ex.Status, "")
		return c.checkUndocumented(ex, err)
	}
	ct := ex.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	note(rreq.Method+" "+route.Path, ex.Status, mt)

	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: rreq, PathParams: params, Route: route, Options: opts}
	var problems []error
	if reqErr := openapi3filter.ValidateRequest(context.Background(), in); reqErr != nil && ex.Status < 400 {
		problems = append(problems, fmt.Errorf("answered %d to a request the document refuses: %w", ex.Status, reqErr))
	}
	stream := mt == "application/x-ndjson" || mt == "text/event-stream"
	ropts := *opts
	ropts.ExcludeResponseBody = stream || head
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: ex.Status, Header: ex.Header, Options: &ropts}
	out.SetBodyBytes(ex.Answer)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		problems = append(problems, fmt.Errorf("answer: %w", err))
	}
	resp := route.Operation.Responses.Status(ex.Status)
	switch {
	case resp == nil || resp.Value == nil:
		// Reported by ValidateResponse.
	case len(resp.Value.Content) == 0 && len(ex.Answer) > 0:
		problems = append(problems, fmt.Errorf("answer %d has a body, which the document does not describe: %q", ex.Status, clip(ex.Answer)))
	case stream && !head:
		media := resp.Value.Content.Get(ct)
		if media == nil {
			problems = append(problems, fmt.Errorf("answer %d: content type %q is not in the document", ex.Status, ct))
			break
		}
		var err error
		if mt == "text/event-stream" {
			err = c.checkEvents(media, ex.Answer)
		} else {
			err = checkLines(media, ex.Answer)
		}
		if err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// checkUndocumented checks an answer to a request the document has no
// operation for: an Error, with Allow on a 405.
func (c *Checker) checkUndocumented(ex Exchange, routeErr error) error {
	var problems []error
	switch ex.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound:
	case http.StatusMethodNotAllowed:
		// CONNECT names no resource (its target is host:port) whose
		// methods an Allow header could list.
		if ex.Header.Get("Allow") == "" && ex.Request.Method != http.MethodConnect {
			problems = append(problems, errors.New("405 without an Allow header"))
		}
	default:
		problems = append(problems, fmt.Errorf("answered %d to a request the document has no operation for (%v)", ex.Status, routeErr))
	}
	if ex.Request.Method != http.MethodHead {
		if err := c.checkError(ex); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// checkError checks that an answer is an Error of the document.
func (c *Checker) checkError(ex Exchange) error {
	if mt, _, _ := mime.ParseMediaType(ex.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("error answer %d has Content-Type %q, not application/json", ex.Status, ex.Header.Get("Content-Type"))
	}
	return visit(c.doc.Components.Schemas["Error"], ex.Answer)
}

// checkLines checks an NDJSON body: every line a value of the media
// type's schema, the first one a job object.
func checkLines(media *openapi3.MediaType, body []byte) error {
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return fmt.Errorf("NDJSON stream: the last line is not ended: %q", clip(body))
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		if err := visit(media.Schema, sc.Bytes()); err != nil {
			return fmt.Errorf("NDJSON line %d: %w", n, err)
		}
		if n == 1 && !bytes.Contains(sc.Bytes(), []byte(`"jid":`)) {
			return fmt.Errorf("NDJSON line 1 is not the job object: %q", clip(sc.Bytes()))
		}
	}
	return sc.Err()
}

// checkEvents checks a text/event-stream body, parsed as the HTML
// standard's EventSource parses it: each event named in the media type's
// x-events with a data field of the schema it names; the first one the
// job, with the stream's only retry field; host events with increasing
// ids, the others with none; comments anywhere.
func (c *Checker) checkEvents(media *openapi3.MediaType, body []byte) error {
	names, _ := media.Extensions["x-events"].(map[string]any)
	if len(names) == 0 {
		return errors.New("the text/event-stream media type names no events (x-events)")
	}
	events, err := ParseEvents(body)
	if err != nil {
		return err
	}
	var lastID int64
	for i, ev := range events {
		name, _ := names[ev.Event].(string)
		schema := c.doc.Components.Schemas[name]
		if schema == nil {
			return fmt.Errorf("event %d: event %q is not in the document", i+1, ev.Event)
		}
		if err := visit(schema, []byte(ev.Data)); err != nil {
			return fmt.Errorf("event %d (%s): %w", i+1, ev.Event, err)
		}
		switch {
		case i == 0 && (ev.Event != "job" || ev.Retry <= 0):
			return fmt.Errorf("event 1 must be the job object with a retry field: %+v", ev)
		case i > 0 && ev.Retry != 0:
			return fmt.Errorf("event %d: a retry field after the first event", i+1)
		case ev.Event == "host":
			id, err := strconv.ParseInt(ev.ID, 10, 64)
			if err != nil || id <= lastID {
				return fmt.Errorf("event %d: host event id %q does not follow %d", i+1, ev.ID, lastID)
			}
			lastID = id
		case ev.ID != "":
			return fmt.Errorf("event %d: a %s event has an id (%q): a browser would resume after it", i+1, ev.Event, ev.ID)
		}
	}
	return nil
}

// visit checks a JSON text against a schema.
func visit(schema *openapi3.SchemaRef, text []byte) error {
	var v any
	if err := json.Unmarshal(text, &v); err != nil {
		return fmt.Errorf("not JSON: %w: %q", err, clip(text))
	}
	if err := schema.Value.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%q does not match the document: %w", clip(text), err)
	}
	return nil
}

// Event is one message of an event stream.
type Event struct {
	Event string // "message" when the stream names none
	Data  string
	ID    string // as sent in this message; "" when it has no id field
	Retry int    // its retry field, in milliseconds; 0 without one
}

// ParseEvents parses a text/event-stream body as an EventSource does:
// lines end with CRLF, LF or CR; a line that starts with ':' is a comment;
// "field: value" (one space after the colon dropped) adds to the message,
// several data fields join with "\n"; a blank line ends a message, which
// is dispatched when it has data. An unended last message is dropped, as
// a browser drops it. Unknown fields are an error here: the API sends
// none.
func ParseEvents(body []byte) ([]Event, error) {
	text := strings.ReplaceAll(strings.ReplaceAll(string(body), "\r\n", "\n"), "\r", "\n")
	var out []Event
	var cur Event
	var data []string
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" {
			if data != nil {
				cur.Data = strings.Join(data, "\n")
				if cur.Event == "" {
					cur.Event = "message"
				}
				out = append(out, cur)
			}
			cur, data = Event{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			cur.Event = value
		case "data":
			data = append(data, value)
		case "id":
			cur.ID = value
		case "retry":
			n, err := strconv.Atoi(value)
			if err != nil {
				return nil, fmt.Errorf("event stream: retry %q is not a number of milliseconds", value)
			}
			cur.Retry = n
		default:
			return nil, fmt.Errorf("event stream: unknown field %q", field)
		}
	}
	return out, nil
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// coverage notes the exchanges checked in this process.
var coverage = struct {
	sync.Mutex
	seen map[string]int
}{seen: map[string]int{}}

func note(op string, status int, mediaType string) {
	coverage.Lock()
	defer coverage.Unlock()
	coverage.seen[op+" "+strconv.Itoa(status)+" "+mediaType]++
}

// Covered lists what the checked exchanges of this process reached, one
// "METHOD /path STATUS media/type" a line (media type empty for answers
// without a body), sorted.
func Covered() []string {
	coverage.Lock()
	defer coverage.Unlock()
	out := make([]string, 0, len(coverage.seen))
	for k := range coverage.seen {
		out = append(out, strings.TrimSpace(k))
	}
	sort.Strings(out)
	return out
}

// Uncovered lists the successes of the document that no exchange checked
// in this process reached: for each operation, each 2xx status and each
// of its media types, as Covered writes them. A test binary that runs all
// its tests calls it at the end (TestMain), so that traffic that misses
// an operation, or one format of an answer, does not pass for proof.
func Uncovered() ([]string, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, k := range Covered() {
		seen[k] = true
	}
	var out []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, resp := range op.Responses.Map() {
				if !strings.HasPrefix(status, "2") {
					continue
				}
				types := []string{""}
				if len(resp.Value.Content) > 0 {
					types = types[:0]
					for mt := range resp.Value.Content {
						types = append(types, mt)
					}
				}
				for _, mt := range types {
					if k := strings.TrimSpace(method + " " + path + " " + status + " " + mt); !seen[k] {
						out = append(out, k)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Handler returns h with every exchange checked against the document; a
// disagreement fails t, naming the request. Requests outside prefix (an
// embedder's own routes) are not checked. It waits, when t's test ends
// (t.Cleanup: register it before the server's own cleanup), for the
// exchanges under way, so that none is checked after t has ended.
func Handler(t testing.TB, h http.Handler, prefix string) http.Handler {
	t.Helper()
	c, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		inFlight sync.WaitGroup
		ended    bool
	)
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { inFlight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("openapitest: exchanges still under way 30s after the test ended")
		}
		mu.Lock()
		ended = true
		mu.Unlock()
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if ended {
			mu.Unlock()
			h.ServeHTTP(w, r)
			return
		}
		inFlight.Add(1)
		mu.Unlock()
		defer inFlight.Done()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("openapitest: %s %s: reading the request body: %v", r.Method, r.URL, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 { // nothing written: net/http answers 200
			rec.status, rec.header = http.StatusOK, w.Header().Clone()
		}
		ex := Exchange{Request: r, Body: body, Status: rec.status, Header: rec.header, Answer: rec.body.Bytes()}
		if err := c.Check(ex); err != nil {
			t.Errorf("openapitest: %s %s: the OpenAPI document and the server disagree:\n%v", r.Method, r.URL, err)
		}
	})
}

// recorder keeps a copy of an answer while it is written. It passes
// flushes and deadlines (http.ResponseController) to the writer it wraps.
type recorder struct {
	http.ResponseWriter
	mu     sync.Mutex
	status int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.mu.Lock()
	if r.status == 0 {
		r.status, r.header = code, r.ResponseWriter.Header().Clone()
	}
	r.mu.Unlock()
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	if r.status == 0 {
		r.status, r.header = http.StatusOK, r.ResponseWriter.Header().Clone()
	}
	r.mu.Unlock()
	n, err := r.ResponseWriter.Write(p)
	r.mu.Lock()
	r.body.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
