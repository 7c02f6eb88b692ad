package http

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/0ops/exed/exe"
)

// Shutdowner is a part that ListenAndServe stops once its server and
// Engine have: the plugin processes the jobs ran on (*loader.Set).
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// ThenTimeout bounds how long ListenAndServe waits for each of its then
// parts to stop (the executor plugin: until the commands of cancelled
// operations have ended) before it moves on.
const ThenTimeout = 30 * time.Second

// ListenAndServe runs a service that embeds the API: it serves srv on
// srv.Addr (with TLS when srv.TLSConfig holds certificates) until ctx ends
// or the process receives SIGTERM or SIGINT, then shuts down in the order
// that loses nothing:
//
//   - srv stops taking connections, its requests in flight finish, and
//     the API's follow streams end with a last line that says the server
//     is shutting down; meanwhile engine stops (Engine.Shutdown): it takes
//     no more requests, and the jobs and sync operations under way get
//     the dispatcher's grace period, then are cancelled;
//   - then, once no job runs, each of then, in order, is given up to
//     ThenTimeout to stop: the plugins the jobs ran on.
//
// A second SIGTERM or SIGINT during the shutdown ends the process at once
// (their default action again). It returns once everything has stopped,
// with srv's error (an address in use: the same shutdown follows) and
// what the parts' shutdowns reported; nil after a clean stop.
func ListenAndServe(ctx context.Context, srv *http.Server, engine *exe.Engine, then ...Shutdowner) error {
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

	front := make(chan error, 1)
	go func() { front <- srv.Shutdown(context.Background()) }()
	errs := []error{err, engine.Shutdown(context.Background()), <-front}
	for _, part := range then {
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
