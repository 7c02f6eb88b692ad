package http

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/0ops/exed/exe"
)

// Shutdowner is a part that ListenAndServe stops once its server and
// Engine have: the plugin processes the jobs ran on (*loader.Set).
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// ThenTimeout bounds how long ListenAndServe waits for each of its Then
// parts to stop (the executor plugin: until the commands of cancelled
// operations have ended) before it moves on.
const ThenTimeout = 30 * time.Second

// DefaultGrace is ServeOptions.Grace when it is zero: the dispatchers'
// default grace period for running jobs.
const DefaultGrace = exe.DefaultLocalGrace

// closeAfter is how long the server's requests still get, once the grace
// has passed and the Engine has stopped its work, to write their answers
// (a sync request cut short answers its hosts FAILED "server shutdown")
// before their connections are closed.
const closeAfter = time.Second

// ServeOptions configure ListenAndServe.
type ServeOptions struct {
	// Grace is how long the work under way may go on once the shutdown
	// begins: the Engine's sync operations and jobs (these also at most
	// their dispatcher's own grace period), and the server's requests in
	// flight. Then the operations and jobs are cancelled, their hosts
	// FAILED "server shutdown"; and once the Engine has stopped, the
	// connections of requests still in flight (a long-lived handler of
	// the service's own) are closed. Zero: DefaultGrace; negative:
	// refused.
	Grace time.Duration
	// Then are stopped, in order, once no job runs: the plugins the jobs
	// ran on (*loader.Set), each given up to ThenTimeout.
	Then []Shutdowner
}

// ListenAndServe runs a service that embeds the API: it serves srv on
// srv.Addr (with TLS when srv.TLSConfig holds certificates) until ctx ends
// or the process receives SIGTERM or SIGINT, then shuts down in the order
// that loses nothing, each step bounded:
//
//   - srv stops taking connections, its requests in flight finish, and
//     the API's follow streams end with a last line that says the server
//     is shutting down; meanwhile engine stops (Engine.Shutdown): it takes
//     no more requests, and the jobs and sync operations under way get
//     opts.Grace, then are cancelled (hosts FAILED "server shutdown");
//     requests still in flight once the Engine has stopped have their
//     connections closed, which is reported;
//   - then, once no job runs, each of opts.Then, in order, is given up to
//     ThenTimeout to stop: the plugins the jobs ran on.
//
// A second SIGTERM or SIGINT during the shutdown ends the process at once
// (their default action again). It returns once everything has stopped,
// with srv's error (an address in use: the same shutdown follows) and
// what the parts' shutdowns reported; nil after a clean stop. A nil srv or
// engine, a nil part in opts.Then, a negative Grace, and an engine that
// has already been shut down are refused before anything is served.
func ListenAndServe(ctx context.Context, srv *http.Server, engine *exe.Engine, opts ServeOptions) error {
	if err := opts.check(srv, engine); err != nil {
		return err
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	addr := srv.Addr
	if addr == "" {
		addr = ":http"
	}
	served := make(chan error, 1)
	if ln, err := net.Listen("tcp", addr); err != nil {
		served <- err
	} else if srv.TLSConfig != nil {
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	stopSignals()

	grace, cancelGrace := context.WithTimeout(context.Background(), opts.Grace)
	defer cancelGrace()
	engineDone := make(chan struct{})
	front := make(chan error, 1)
	go func() { front <- shutdownServer(srv, grace, engineDone) }()
	errs := []error{err, engine.Shutdown(grace)}
	close(engineDone)
	errs = append(errs, <-front)
	for _, part := range opts.Then {
		sctx, cancel := context.WithTimeout(context.Background(), ThenTimeout)
		errs = append(errs, part.Shutdown(sctx))
		cancel()
	}
	for i, e := range errs {
		if errors.Is(e, http.ErrServerClosed) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

// check refuses what ListenAndServe cannot run with.
func (o ServeOptions) check(srv *http.Server, engine *exe.Engine) error {
	switch {
	case srv == nil:
		return errors.New("exehttp: ListenAndServe needs an *http.Server")
	case engine == nil:
		return errors.New("exehttp: ListenAndServe needs an Engine")
	case o.Grace < 0:
		return errors.New("exehttp: ServeOptions.Grace is negative (zero means the default)")
	}
	for i, part := range o.Then {
		if part == nil || isNilPointer(part) {
			return fmt.Errorf("exehttp: ServeOptions.Then[%d] is nil", i)
		}
	}
	if errors.Is(engine.Health(context.Background()), exe.ErrShutdown) {
		return errors.New("exehttp: ListenAndServe needs an Engine that has not been shut down")
	}
	return nil
}

// shutdownServer shuts srv down: its requests in flight get until grace
// is done, and longer while the Engine still stops its work (engineDone
// not closed), then closeAfter; the connections of those still in flight
// then are closed.
func shutdownServer(srv *http.Server, grace context.Context, engineDone <-chan struct{}) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-grace.Done()
		<-engineDone
		t := time.NewTimer(closeAfter)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := srv.Shutdown(ctx)
	if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
		return err
	}
	_ = srv.Close()
	return errors.New("exehttp: requests were still in flight when the shutdown grace period had passed and the Engine had stopped; their connections were closed")
}

// isNilPointer reports whether v holds a nil pointer, whose methods
// would panic.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
