package redistest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// LossyProxy forwards connections on 127.0.0.1 to a Redis server and can
// lose one reply: after DropNextReply, the next reply the server sends is
// not passed on, and the proxy closes that connection instead, as a network
// fault just after the server ran a command would. A client then sees an
// error for a command that took effect.
//
// It can also cut the network (Blackhole): from then on nothing passes,
// on the connections open then or made until Restore, in either
// direction, and nothing is closed: clients wait for replies that never
// come, as behind a partition, and what they send never reaches Redis.
type LossyProxy struct {
	Addr string // 127.0.0.1:port, for the client

	target  string
	ln      net.Listener
	drop    atomic.Bool
	dropped atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn     // clients' connections
	servers []net.Conn     // the proxy's connections to the server
	holed   bool           // guarded by mu
	live    []*atomic.Bool // per client connection: false once blackholed
}

// NewLossyProxy starts a proxy to target (host:port), closed when the test
// ends.
func NewLossyProxy(t testing.TB, target string) *LossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &LossyProxy{Addr: ln.Addr().String(), target: target, ln: ln}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// DropNextReply makes the proxy lose the next reply it would forward.
func (p *LossyProxy) DropNextReply() { p.drop.Store(true) }

// Blackhole cuts the network until Restore: the connections open now,
// and those made before Restore, never pass anything again.
func (p *LossyProxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed = true
	for _, l := range p.live {
		l.Store(false)
	}
}

// Restore ends a Blackhole: new connections pass again, and those it
// held are reset (closed), as a network coming back resets the
// connections it stalled; their clients see an error at once instead of
// waiting out their timeouts.
func (p *LossyProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed = false
	for i, l := range p.live {
		if !l.Load() {
			_ = p.conns[i].Close()
		}
	}
}

// Dropped is how many replies were lost so far.
func (p *LossyProxy) Dropped() int { return int(p.dropped.Load()) }

func (p *LossyProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		live := &atomic.Bool{}
		p.mu.Lock()
		live.Store(!p.holed)
		p.live = append(p.live, live)
		p.conns = append(p.conns, client)
		p.mu.Unlock()
		if !live.Load() {
			go sink(client)
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.servers = append(p.servers, server)
		p.mu.Unlock()
		go func() { // requests pass unchanged, while live
			pipe(server, client, func() bool { return false }, live)
			server.Close()
		}()
		go func() { // replies pass, but for one to drop, while live
			pipe(client, server, p.loseReply, live)
			client.Close()
			server.Close()
		}()
	}
}

// loseReply reports whether to lose the reply just read, once per
// DropNextReply.
func (p *LossyProxy) loseReply() bool {
	if p.drop.CompareAndSwap(true, false) {
		p.dropped.Add(1)
		return true
	}
	return false
}

// pipe copies src to dst until either fails or lose is true for a read,
// which is then not passed on. Once live is false, it reads on and passes
// nothing.
func pipe(dst, src net.Conn, lose func() bool, live *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && live.Load() {
			if lose() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// sink reads a blackholed connection until its client closes it.
func sink(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			c.Close()
			return
		}
	}
}

func (p *LossyProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range append(p.conns, p.servers...) {
		_ = c.Close()
	}
}
