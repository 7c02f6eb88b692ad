package http

import (
	"net/http"
	"time"
)

// Observer is told of every request the API answers and of its follow
// streams: what metrics need of the transport (package prometheus,
// github.com/0ops/exed/prometheus, implements it). Its methods are called
// on every request, from many goroutines at once: they must be quick,
// never block, and be safe for concurrent use.
type Observer interface {
	// Request: a request was answered with code after d. route is the
	// ServeMux pattern that served it ("GET /jobs/{jid}", with the
	// prefix), never the raw path, so that it takes a bounded set of
	// values: the patterns of the endpoints, the method-less pattern of a
	// path answered 405, and "/" for every request no endpoint serves (404,
	// the mux's redirects to a clean path). A request refused before it reached its handler (a Host or
	// cross-site check, a credential) has the route it asked for.
	Request(route string, code int, d time.Duration)
	// FollowStreams: the number of open follow streams changed by delta
	// (+1 as one starts streaming, -1 as it ends).
	FollowStreams(delta int)
}

// observed is the ResponseWriter of an observed request: it keeps the
// status sent, and the route the handler that served it notes. Unwrap
// lets http.ResponseController reach the real writer, so follow streams
// still flush and set deadlines through it.
type observed struct {
	http.ResponseWriter
	code  int
	wrote bool
	route string
}

func (o *observed) WriteHeader(code int) {
	if !o.wrote && code >= 200 {
		o.code, o.wrote = code, true
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *observed) Write(b []byte) (int, error) {
	o.wrote = true
	return o.ResponseWriter.Write(b)
}

func (o *observed) Unwrap() http.ResponseWriter { return o.ResponseWriter }

// observe reports every request to obs with the route mux chose for it.
// The handler that serves it notes its pattern (routed); a request that
// never reached one (refused by the Host or cross-site check) is looked
// up in mux, which only that rare path pays for.
func observe(obs Observer, mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := &observed{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(o, r)
		route := o.route
		if route == "" {
			_, route = mux.Handler(r)
		}
		if route == "" {
			route = "/" // the mux's own answers: a redirect to a clean path
		}
		obs.Request(route, o.code, time.Since(start))
	})
}

// routed notes pattern as the route of the requests h serves, for
// observe; without an Observer it is h itself.
func routed(obs Observer, pattern string, h http.Handler) http.Handler {
	if obs == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for u := w; u != nil; {
			if o, ok := u.(*observed); ok {
				o.route = pattern
				break
			}
			uw, ok := u.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				break
			}
			u = uw.Unwrap()
		}
		h.ServeHTTP(w, r)
	})
}

// metrics serves Options.Metrics (the Prometheus exposition of package
// prometheus's registry) to credentials with the metrics permission. The
// route is there without it, as the OpenAPI document has it: 404.
func (a *API) metrics(w http.ResponseWriter, r *http.Request) {
	if a.opts.Metrics == nil {
		writeMessage(w, http.StatusNotFound, "this server serves no metrics")
		return
	}
	a.opts.Metrics.ServeHTTP(w, r)
}

// MetricsHandler serves only GET {Prefix}/metrics, with opts.Metrics,
// behind the API's own checks: credentials (opts.Credentials, Tokens,
// ClientCerts) with the metrics permission, the Host and cross-site
// checks of ServerNames, the audit of refusals, and {"message"} errors
// (404 for every other path). It is for a process that runs jobs but
// serves no API, such as `exed worker`; opts.Observer sees its requests.
// opts.Metrics must be set.
func MetricsHandler(opts Options) http.Handler {
	a := newAPI(nil, opts)
	a.handler = a.build([]route{a.metricsRoute()})
	return a
}

func (a *API) metricsRoute() route { return route{method: "GET", path: "/metrics", handler: a.metrics} }
