package sshnative

import "time"

// Observer is told of the SSH connections an Executor sets up and pools:
// what metrics need of it (package prometheus, github.com/0ops/exed/prometheus,
// has one: NewSSH). Its methods are called as connections open and close,
// from many goroutines at once: they must be quick, never block, and be
// safe for concurrent use.
type Observer interface {
	// Dialed: setting up a connection to a host or a jump host took d and
	// ended with err (nil: connected). That is the TCP connect (or the
	// channel through the jump host), the SSH handshake with its host key
	// check, and authentication. For a host behind a jump host that was
	// not connected yet, d includes the jump host's own dial, which is
	// reported as well.
	Dialed(d time.Duration, err error)
	// Pooled: the pool holds delta more connections: +1 as one is set up,
	// -1 as one closes (idle past idle_timeout, dropped by the server or a
	// failed keepalive, or the executor closing).
	Pooled(delta int)
}

// noObserver is the Observer of an Executor given none.
type noObserver struct{}

func (noObserver) Dialed(time.Duration, error) {}
func (noObserver) Pooled(int)                  {}
