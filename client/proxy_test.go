package client_test

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// cutProxy is a TCP proxy on 127.0.0.1 that drops connections the way a
// network or a load balancer does: connection i is cut (both sides
// closed) once cuts[i] bytes of the server's answer have passed, or, past
// the list, after every connection's every bytes when every > 0; cutAll
// drops the open ones at once.
type cutProxy struct {
	ln net.Listener

	mu       sync.Mutex
	upstream string
	cuts     []int64
	every    int64
	conns    int // connections accepted
	open     map[net.Conn]net.Conn
	sent     []int64 // bytes of the answer passed, per connection
	wg       sync.WaitGroup
}

func newCutProxy(t *testing.T, upstreamURL string, cuts ...int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, cuts: cuts, open: map[net.Conn]net.Conn{}}
	p.setUpstream(t, upstreamURL)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// cutEvery cuts the connections past the cuts list after n bytes each.
func (p *cutProxy) cutEvery(n int64) {
	p.mu.Lock()
	p.every = n
	p.mu.Unlock()
}

// url is the proxy's URL with upstream's path (the API's prefix).
func (p *cutProxy) url(upstreamURL string) string {
	u, _ := url.Parse(upstreamURL)
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *cutProxy) setUpstream(t *testing.T, upstreamURL string) {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	require.NoError(t, err)
	p.mu.Lock()
	p.upstream = u.Host
	p.mu.Unlock()
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		i, limit := p.conns, int64(-1)
		p.conns++
		if i < len(p.cuts) {
			limit = p.cuts[i]
		} else if p.every > 0 {
			limit = p.every
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.open[c] = up
		p.sent = append(p.sent, 0)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(up, c)
			p.drop(c)
		}()
		go func() {
			defer p.wg.Done()
			var r io.Reader = up
			if limit >= 0 {
				r = io.LimitReader(up, limit)
			}
			_, _ = io.Copy(countingWriter{c, func(n int) { p.mu.Lock(); p.sent[i] += int64(n); p.mu.Unlock() }}, r)
			p.drop(c)
		}()
	}
}

type countingWriter struct {
	w     io.Writer
	count func(int)
}

// Write counts b before writing it: the client may read the bytes and
// its test ask for the count before a Write returns. Bytes that were
// not written are taken back.
func (cw countingWriter) Write(b []byte) (int, error) {
	cw.count(len(b))
	n, err := cw.w.Write(b)
	if n < len(b) {
		cw.count(n - len(b))
	}
	return n, err
}

// drop closes a connection and its upstream.
func (p *cutProxy) drop(c net.Conn) {
	p.mu.Lock()
	up, ok := p.open[c]
	delete(p.open, c)
	p.mu.Unlock()
	if ok {
		c.Close()
		up.Close()
	}
}

// cutAll drops every open connection.
func (p *cutProxy) cutAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.open))
	for c := range p.open {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		p.drop(c)
	}
}

// openConns is how many connections are open.
func (p *cutProxy) openConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}

// bytesSent is what connection i passed of its answer.
func (p *cutProxy) bytesSent(i int) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[i]
}

func (p *cutProxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *cutProxy) close() {
	if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return
	}
	p.cutAll()
	p.wg.Wait()
}
