// Package http serves exed's HTTP API (API.md) for an exe.Engine.
//
// # Mounting
//
// New returns the API, an http.Handler serving every endpoint under
// Options.Prefix; Register mounts it on a mux of the service's own, one
// pattern per method under the prefix (Go 1.22 method patterns), so it
// never conflicts with the service's routes such as "GET /":
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /{$}", home)
//	exehttp.New(engine, exehttp.Options{Prefix: "/exe"}).Register(mux)
//
// Options also set who may call it (bearer tokens, scoped credentials,
// client certificates; package auth), which host names it answers to,
// the audit trail, and metrics: an Observer told of every request, and
// the handler GET /metrics serves to credentials with the metrics
// permission (package prometheus has both). MetricsHandler serves that
// endpoint alone, for a process that serves no API.
//
// # Follow streams and the OpenAPI document
//
// GET /jobs/{jid}?follow=1 streams a job's events as they are recorded:
// NDJSON, or Server-Sent Events for a request that accepts
// text/event-stream (each event's id its sequence number, so that a
// browser's EventSource resumes by itself); from=N, or Last-Event-ID,
// resumes after event N (Engine.FollowFrom). OpenAPI returns the OpenAPI
// 3 document of every endpoint, served at GET /openapi.json.
//
// # The job dashboard
//
// With Options.UI, GET Prefix/ui/ serves a page for browsers: the job
// list, each job's hosts filling in live, cancel, and a form that runs
// ping or execute. It is a client of the API like any other (it asks for
// a bearer token and sends it in the Authorization header, and follows
// jobs as Server-Sent Events read with fetch, resumed with
// Last-Event-ID); its files are embedded and served with
// UIContentSecurityPolicy. The origin checks let another site link to the
// page (a top-level navigation), and nothing else of it or of the API.
//
// # Errors
//
// Every non-2xx answer, including the mux's own 404 and 405, is
// {"message": "..."} with Content-Type application/json: a kind of
// exe.ErrorKinds is answered with its status and its message; an
// unexpected error is logged in full and answered 500 with a generic
// message. net/http answers requests it cannot read itself, in plain
// text, unless the server serves on JSONErrorListener.
//
// # Lifecycle
//
// A follow stream (GET /jobs/{jid}?follow=1) lasts as long as its job, so
// http.Server.Shutdown would wait for it: the API ends its streams itself,
// each with the job as last known and "message": "stream ended: server
// shutting down", when the http.Server serving them shuts down (it
// registers with each, RegisterOnShutdown) and when its Engine has shut
// down. ListenAndServe runs a service's server and stops it with the
// Engine and the plugins in the order that loses nothing.
package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultLineTimeout  = 30 * time.Second
)

// Options configure the API handler.
type Options struct {
	// Prefix mounts every endpoint under a path, e.g. "/exe": the
	// endpoints are then "/exe/ping", "/exe/jobs/{jid}". A missing
	// leading slash and trailing slashes are tolerated ("exe/" is
	// "/exe"); letters, digits, "-", ".", "_", "~" and "/" between
	// segments are allowed, and New panics, naming it, on a prefix with
	// anything else (a space, "{", "%", an empty or dot segment), as
	// http.ServeMux does on a bad pattern. Empty: root.
	Prefix string
	// MaxBodyBytes caps request bodies (413 beyond). Zero: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Tokens, when not empty, are the bearer tokens accepted on every
	// endpoint but /healthz and /openapi.json, each with full access.
	// Credentials, when set, take their place.
	Tokens []string
	// Credentials are the named, scoped tokens and client certificate
	// names accepted on every endpoint but /healthz and /openapi.json
	// (package auth); a Reload of them holds for every request that
	// starts after it.
	Credentials *auth.Keeper
	// ClientCerts makes a client certificate that the TLS server verified
	// authenticate a request: by its cert: line in Credentials, or, with no
	// Credentials, with full access under its Common Name.
	ClientCerts bool
	// ClientCAs, when set, are the client certificate authorities the TLS
	// server verifies client certificates against (auth.ClientCAs, whose
	// Pool each handshake must take). After a Set that changes them, a
	// request on a connection opened before, whose certificate they no
	// longer sign, is 401 with the reason, whether it shows the
	// certificate or a token, as a new connection with that certificate
	// fails its handshake; the follow streams of such a connection end as
	// a revoked token's do. A certificate that expires while its
	// connection is open is refused the same way from its expiry on.
	// Without it, a certificate is checked only at the handshake.
	ClientCAs *auth.ClientCAs
	// Audit, when set, records who asked for what (NewAudit).
	Audit *Audit
	// LineTimeout is the write deadline of each line of a follow stream, so
	// a stalled client cannot hold a stream forever while a server-wide
	// WriteTimeout cannot cut a long one: a line not taken within it ends
	// the stream (each line has at least 7/8 of it: the deadline is moved
	// on every eighth of it, not at every line). Zero: DefaultLineTimeout.
	LineTimeout time.Duration
	// StreamKeepAlive is how long an event stream (a follow served as
	// Server-Sent Events) may stay silent: once it has been for that
	// long, a comment line (": keepalive") is sent, so that proxies and
	// browsers do not take a quiet job's stream for a dead connection.
	// NDJSON streams carry no such line: their format is the seed's.
	// Zero: DefaultStreamKeepAlive; negative: none.
	StreamKeepAlive time.Duration
	// ServerNames are the host names (Host header, port ignored) the API
	// answers to besides "localhost" and IP literals, which it always
	// answers to; "*" allows any name. A request for another name is 403,
	// which defeats DNS rebinding. Requests a browser marks as coming from
	// another site (Sec-Fetch-Site, Origin, Referer) are 403 on every
	// endpoint and method, GET included, since GETs run commands.
	ServerNames []string
	// Metrics, when set, is served on GET {Prefix}/metrics to credentials
	// with the metrics permission (a scraper's token: ops=metrics): the
	// Prometheus exposition of package prometheus's registry
	// (github.com/0ops/exed/prometheus). Nil: the endpoint answers 404
	// "this server serves no metrics".
	Metrics http.Handler
	// Observer, when set, is told of every request and follow stream
	// (package prometheus's Metrics). Nil: nothing is measured.
	Observer Observer
	// UI serves the job dashboard, a page for browsers, at Prefix+"/ui/"
	// (GET; Prefix+"/ui" redirects there): the job list, each job's hosts
	// live, cancel, and a form that runs ping or execute on a pattern.
	// Its files need no credentials (they are the same for every server);
	// the page asks for a bearer token, keeps it in the tab's session
	// storage and sends it in the Authorization header of its API calls.
	// Every file is served with UIContentSecurityPolicy.
	UI bool
	// Logger receives unexpected errors. Nil: discarded.
	Logger hclog.Logger
}

// API serves the endpoints of API.md for one Engine. It is an
// http.Handler serving every endpoint under Options.Prefix, and Register
// mounts it on a mux of the caller's.
//
// Follow streams last as long as their job, so http.Server.Shutdown would
// wait for them: the API ends them itself, with a last line that says the
// server is shutting down, when the http.Server that serves them shuts
// down (it registers with each server it serves, through
// RegisterOnShutdown), and when its Engine shuts down.
type API struct {
	engine  *exe.Engine
	opts    Options
	log     hclog.Logger
	authn   *authenticator
	audit   *Audit
	guard   *originGuard
	handler http.Handler
	// patterns are the method patterns build registered on the mux, each
	// with whether it is public: what the OpenAPI document must list.
	patterns map[string]bool

	mu sync.Mutex
	// servers are the http.Servers that served a follow, each with a
	// context cancelled (cause exe.ErrShutdown) when it shuts down.
	servers map[*http.Server]context.Context
	// lines are the recent events' lines, shared by their followers.
	lines eventLines
}

var _ http.Handler = (*API)(nil)

// New returns the API of engine. It panics on a nil engine and on a
// Prefix that cannot be a path (see Options.Prefix): mistakes of the
// program's, reported where they are made rather than at the first
// request.
func New(engine *exe.Engine, opts Options) *API {
	if engine == nil {
		panic("exehttp: New needs an Engine, not nil")
	}
	a := newAPI(engine, opts)
	a.handler = a.build(a.routes())
	return a
}

// newAPI returns the API with opts defaulted, and no handler yet; it
// panics on a prefix that cannot be a path.
func newAPI(engine *exe.Engine, opts Options) *API {
	prefix, err := cleanPrefix(opts.Prefix)
	if err != nil {
		panic(err.Error())
	}
	opts.Prefix = prefix
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.LineTimeout <= 0 {
		opts.LineTimeout = DefaultLineTimeout
	}
	if opts.StreamKeepAlive == 0 {
		opts.StreamKeepAlive = DefaultStreamKeepAlive
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &API{engine: engine, opts: opts, log: log, authn: newAuthenticator(opts), audit: opts.Audit,
		guard: newOriginGuard(opts.ServerNames), servers: map[*http.Server]context.Context{},
		lines: newEventLines()}
}

// cleanPrefix returns prefix as the API mounts it: "" or "/seg/seg", with
// a leading slash and without a trailing one; an error for a prefix that
// cannot be a path of plain segments.
func cleanPrefix(prefix string) (string, error) {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("exehttp: Options.Prefix %q: an empty or dot segment", prefix)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
				return "", fmt.Errorf("exehttp: Options.Prefix %q: %q is not allowed in a prefix (letters, digits, \"-._~\" and \"/\")", prefix, r)
			}
		}
	}
	return "/" + p, nil
}

// ServeHTTP serves every endpoint under the prefix, with JSON 405s (and
// an Allow header) for known paths and a JSON 404 for the rest. Every
// request first passes the Host and cross-site checks (ServerNames).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// serverShutdown returns a context that ends, with cause exe.ErrShutdown,
// when the http.Server that serves r shuts down; nil when r does not say
// which server serves it.
func (a *API) serverShutdown(r *http.Request) context.Context {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, ok := a.servers[srv]
	if !ok {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(context.Background())
		a.servers[srv] = ctx
		// Kept once cancelled: a stream that starts while the server
		// shuts down ends at once.
		srv.RegisterOnShutdown(func() { cancel(exe.ErrShutdown) })
	}
	return ctx
}

type route struct {
	method, path string
	handler      http.HandlerFunc
	public       bool // no token needed
	// operates marks a GET that runs an operation on hosts (the sync
	// operations): HEAD, which net/http's mux routes to a GET and which
	// link checkers and probes send as a safe method, is refused there
	// (405) instead of running it.
	operates bool
}

func (a *API) routes() []route {
	return []route{
		{method: "GET", path: "/target", handler: a.target},
		{method: "GET", path: "/ping", handler: a.syncOp(exe.OpPing), operates: true},
		{method: "POST", path: "/ping", handler: a.asyncOp(exe.OpPing)},
		{method: "GET", path: "/facter", handler: a.syncOp(exe.OpFacter), operates: true},
		{method: "POST", path: "/facter", handler: a.asyncOp(exe.OpFacter)},
		{method: "GET", path: "/service", handler: a.syncOp(exe.OpService), operates: true},
		{method: "POST", path: "/service", handler: a.asyncOp(exe.OpService)},
		{method: "GET", path: "/execute", handler: a.syncOp(exe.OpExecute), operates: true},
		{method: "POST", path: "/execute", handler: a.asyncOp(exe.OpExecute)},
		{method: "POST", path: "/deploy", handler: a.asyncOp(exe.OpDeploy)},
		{method: "GET", path: "/tasks", handler: a.tasks},
		{method: "POST", path: "/tasks", handler: a.asyncOp(exe.OpTask)},
		{method: "GET", path: "/jobs", handler: a.jobs},
		{method: "GET", path: "/jobs/{jid}", handler: a.job},
		{method: "DELETE", path: "/jobs/{jid}", handler: a.deleteJob},
		{method: "POST", path: "/jobs/{jid}/cancel", handler: a.cancelJob},
		{method: "GET", path: "/healthz", handler: a.health, public: true},
		{method: "GET", path: "/openapi.json", handler: a.openAPI, public: true},
		a.metricsRoute(),
	}
}

// methods are the request methods Register routes to the API under its
// prefix. Patterns with a method never conflict with a host application's
// own patterns such as "GET /", which a method-less "/prefix/" would.
var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Register mounts the API on mux under the prefix; the host application's
// other routes are untouched.
func (a *API) Register(mux *http.ServeMux) {
	for _, m := range methods {
		mux.Handle(m+" "+a.opts.Prefix+"/", a)
	}
}

// build returns the mux of the endpoints routes, behind the Host and
// cross-site checks, and observed when Options has an Observer.
func (a *API) build(routes []route) http.Handler {
	mux := http.NewServeMux()
	obs := a.opts.Observer
	a.patterns = map[string]bool{}
	allowed := map[string][]string{}
	noHead := map[string]bool{} // paths whose GET operates: HEAD is 405
	var paths []string
	for _, rt := range routes {
		h := checkQuery(rt.handler)
		if !rt.public {
			h = a.authorize(rt, h)
		}
		pattern := rt.method + " " + a.opts.Prefix + rt.path
		mux.Handle(pattern, routed(obs, pattern, h))
		a.patterns[pattern] = rt.public
		if _, ok := allowed[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allowed[rt.path] = append(allowed[rt.path], rt.method)
		switch {
		case rt.method == "GET" && rt.operates:
			noHead[rt.path] = true
		case rt.method == "GET":
			allowed[rt.path] = append(allowed[rt.path], "HEAD") // the mux routes it to the GET
		}
	}
	for _, p := range paths {
		methods := allowed[p]
		sort.Strings(methods)
		allow := strings.Join(methods, ", ")
		notAllowed := routed(obs, a.opts.Prefix+p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeMessage(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; allowed: "+allow)
		}))
		// A method-less pattern is less specific than the method ones, so
		// it only catches the methods they do not serve.
		mux.Handle(a.opts.Prefix+p, notAllowed)
		if noHead[p] {
			// More specific than "GET p", which would take HEAD too and
			// run the operation (its answer's body discarded).
			mux.Handle("HEAD "+a.opts.Prefix+p, notAllowed)
		}
	}
	if a.opts.UI {
		a.registerUI(mux)
	}
	mux.Handle("/", routed(obs, "/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})))
	h := withRequestID(a.guard.wrap(muxErrorsAsJSON(mux), a.uiNavigation))
	if obs != nil {
		h = observe(obs, mux, h)
	}
	return h
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	if job, ok := v.(*exe.Job); ok && job != nil {
		// The same bytes as json.Marshal's, which would only check and
		// copy the method's output (compact, HTML escaped) once more.
		b, err = job.MarshalJSON()
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeStrings answers with list as a JSON array: byte for byte what
// writeJSON writes for it, for the lists of up to every host of an
// inventory that GET /target answers: without encoding/json's reflection,
// and written as it is made, through a buffer of stringsFlush bytes, not
// first made whole (megabytes for 100,000 names).
func writeStrings(w http.ResponseWriter, status int, list []string) {
	if list == nil {
		writeJSON(w, status, list)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	bp := stringsBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 4*stringsFlush { // not one made for a huge string
			stringsBuffers.Put(bp)
		}
	}()
	b := append((*bp)[:0], '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
		if len(b) >= stringsFlush {
			if _, err := w.Write(b); err != nil {
				return // the client is gone
			}
			b = b[:0]
		}
	}
	b = append(b, ']', '\n')
	_, _ = w.Write(b)
	*bp = b
}

// stringsFlush is how many bytes writeStrings writes at once.
const stringsFlush = 32 << 10

var stringsBuffers = sync.Pool{New: func() any { b := make([]byte, 0, stringsFlush+1024); return &b }}

// jsonSafe are the bytes encoding/json writes as they are in a string
// (with its HTML escaping): ASCII but control characters, '"', '\\',
// '<', '>' and '&'.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()

// appendJSONString appends s as encoding/json writes it: as it is, in
// quotes, when every byte is jsonSafe (host names); else as json.Marshal
// escapes it (control characters, quotes, backslashes, <, > and &,
// U+2028 and U+2029, invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonSafe[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// writeMessage answers with {"message": msg}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// statusOf maps exe's error kinds to status codes (exe.ErrorKinds); an
// unexpected error is a 500.
func statusOf(err error) int {
	if kind, ok := exe.KindOf(err); ok {
		return kind.HTTPStatus
	}
	return http.StatusInternalServerError
}

// statusClientClosed answers a request whose client went away (or
// half-closed its connection, which net/http takes for the same) before
// the answer was ready: nginx's 499 "client closed request". It is no
// server error, and the client rarely reads it.
const statusClientClosed = 499

// msgClientClosed is the message of a statusClientClosed answer (API.md).
const msgClientClosed = "request cancelled: the client closed its connection"

// clientGone reports whether err is the end of r's context: its client
// went away (or half-closed its connection), and what r asked for was cut
// short by that, not refused. net/http ends a request's context only
// then (or when the handler returns), and exe and the plugins return
// that ending as context.Canceled (or DeadlineExceeded, for a context an
// embedder bounded).
func clientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// writeError answers with err's status and public message; unexpected
// errors are logged in full and shown as a generic message. An error that
// comes of the request's context ending (clientGone) is neither: it is
// answered 499 and logged at debug level.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if clientGone(r, err) {
		a.log.Debug(msgClientClosed, "method", r.Method, "path", r.URL.Path, "error", err)
		writeMessage(w, statusClientClosed, msgClientClosed)
		return
	}
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeMessage(w, status, exe.PublicMessage(err))
}
