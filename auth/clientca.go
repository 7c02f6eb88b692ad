package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ClientCAs holds the client certificate authorities in force (mutual
// TLS: [api] tls_client_ca) and replaces them on Set; it is safe for
// concurrent use.
//
// crypto/tls verifies a client's certificate once, at the handshake: a
// connection opened before a CA was rotated out would go on
// authenticating with a certificate the new pool does not sign, or that
// has expired since. Verify checks a connection's certificate again
// against the pool in force, as the handshake does, for every request:
// while the first pool is in force that is a look at the clock, and
// after a Set that changed it one map lookup, each presented chain being
// verified once per pool (and once more when it expires) whatever the
// number of connections and requests that present it.
//
// For Verify to trust the handshake while the first pool is in force,
// the TLS server must verify client certificates against Pool as it is
// at each handshake (tls.Config.GetConfigForClient returning a Config
// whose ClientCAs is Pool()).
type ClientCAs struct {
	cur atomic.Pointer[caPool]

	mu      sync.Mutex // serialises Set
	changed notice     // signalled by a Set that changes the pool
}

// caPool is one pool in force, and what Verify found of the chains
// presented under it.
type caPool struct {
	pool *x509.CertPool
	gen  uint64

	mu       sync.RWMutex
	verdicts map[string]*verdict // by the DER of the leaf certificate
}

// verdict is the outcome of verifying a leaf with the intermediates it
// was presented with.
type verdict struct {
	intermediates [][]byte // DER, in the order presented
	err           error
	until         time.Time // when err is nil: it holds until then
}

// maxVerdicts bounds the verdicts a pool keeps (each holds a certificate
// chain's DER, a few KiB): beyond it, a chain not yet seen is verified at
// each of its requests.
const maxVerdicts = 4096

// NewClientCAs holds pool; a nil pool is an empty one, which signs
// nothing (x509 would take nil for the system's roots).
func NewClientCAs(pool *x509.CertPool) *ClientCAs {
	c := &ClientCAs{}
	c.cur.Store(newCAPool(pool, 0))
	return c
}

func newCAPool(pool *x509.CertPool, gen uint64) *caPool {
	if pool == nil {
		pool = x509.NewCertPool()
	}
	return &caPool{pool: pool, gen: gen, verdicts: map[string]*verdict{}}
}

// Pool returns the pool in force, for the TLS handshake. It must not be
// changed: Set another.
func (c *ClientCAs) Pool() *x509.CertPool { return c.cur.Load().pool }

// Generation counts the Sets that changed the pool: 0 while the first
// one is in force.
func (c *ClientCAs) Generation() uint64 { return c.cur.Load().gen }

// Set puts pool in force (nil: an empty pool), when it holds other
// certificates than the pool in force (x509.CertPool.Equal), and reports
// whether it did. From then on Verify verifies every connection against
// it, those opened before included, and Changed's channel is closed. A
// pool equal to the one in force changes nothing: a reload of the same
// file costs no verification.
func (c *ClientCAs) Set(pool *x509.CertPool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cur.Load()
	next := newCAPool(pool, old.gen+1)
	if old.pool.Equal(next.pool) {
		return false
	}
	c.cur.Store(next)
	c.changed.signal()
	return true
}

// Changed returns a channel closed when Set changes the pool, so that
// what holds on to a certificate check, a follow stream say, can check
// again at once rather than at its next use. Take it before calling
// Verify: a change after Changed returned closes the channel it returned.
func (c *ClientCAs) Changed() <-chan struct{} { return c.changed.wait() }

// ErrNotSigned is the error of Verify for a certificate no chain leads
// from to the client CAs in force: a CA rotated out since the handshake.
var ErrNotSigned = errors.New("client certificate no longer verifies: the client CA reloaded does not sign it")

// Verify reports whether the client certificate of a TLS connection
// (cs.PeerCertificates, leaf first, as the client sent them) verifies
// now against the pool in force as crypto/tls verifies it at the
// handshake: x509.Certificate.Verify with the rest of the chain as
// intermediates and ExtKeyUsageClientAuth. A connection without a
// certificate (cs nil, or no PeerCertificates) has nothing to verify:
// nil. The error says why a certificate is refused, in words for the
// client: ErrNotSigned when no chain leads to the pool, x509's error
// otherwise (a certificate of the chain has expired since the
// handshake, say).
//
// While the first pool is in force, a certificate the handshake verified
// (cs.VerifiedChains) is not verified again until it expires.
func (c *ClientCAs) Verify(cs *tls.ConnectionState) error {
	_, err := c.VerifyUntil(cs)
	return err
}

// VerifyUntil is Verify, and says until when its nil answer holds if no
// Set comes: the time the first certificate of the chain expires (the
// latest such time when several chains lead to the pool). Zero for a
// connection without a certificate.
func (c *ClientCAs) VerifyUntil(cs *tls.ConnectionState) (time.Time, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return time.Time{}, nil
	}
	p := c.cur.Load()
	now := time.Now()
	if p.gen == 0 && len(cs.VerifiedChains) > 0 {
		if until := chainsExpiry(cs.VerifiedChains); !now.After(until) {
			return until, nil
		}
		// Expired since the handshake: x509 says which certificate.
	}
	return p.verify(cs.PeerCertificates, now)
}

func (p *caPool) verify(certs []*x509.Certificate, now time.Time) (time.Time, error) {
	leaf, rest := certs[0], certs[1:]
	p.mu.RLock()
	v := p.verdicts[string(leaf.Raw)]
	p.mu.RUnlock()
	if v != nil && v.presentedWith(rest) && (v.err != nil || !now.After(v.until)) {
		return v.until, v.err
	}
	v = &verdict{}
	v.until, v.err = verifyChain(p.pool, leaf, rest, now)
	for _, c := range rest {
		v.intermediates = append(v.intermediates, c.Raw)
	}
	p.mu.Lock()
	if _, seen := p.verdicts[string(leaf.Raw)]; seen || len(p.verdicts) < maxVerdicts {
		p.verdicts[string(leaf.Raw)] = v
	}
	p.mu.Unlock()
	return v.until, v.err
}

// presentedWith reports whether the verdict is for the leaf presented
// with rest: other intermediates may lead to other roots.
func (v *verdict) presentedWith(rest []*x509.Certificate) bool {
	return slices.EqualFunc(v.intermediates, rest, func(b []byte, c *x509.Certificate) bool { return string(b) == string(c.Raw) })
}

// verifyChain is crypto/tls's verification of a client's certificate
// (handshake_server.go, processCertsFromClient), at now; it returns when
// the chains it found expire.
func verifyChain(pool *x509.CertPool, leaf *x509.Certificate, rest []*x509.Certificate, now time.Time) (time.Time, error) {
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range rest {
		opts.Intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(opts)
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
		return chainsExpiry(chains), nil
	case errors.As(err, &unknown):
		// Its text names a candidate CA of the pool, and why it failed:
		// nothing the client can act on.
		return time.Time{}, ErrNotSigned
	}
	return time.Time{}, fmt.Errorf("client certificate no longer verifies: %w", err)
}

// chainsExpiry is when the last of chains stops verifying: each does at
// the first NotAfter of its certificates.
func chainsExpiry(chains [][]*x509.Certificate) time.Time {
	var latest time.Time
	for _, chain := range chains {
		var first time.Time
		for i, c := range chain {
			if i == 0 || c.NotAfter.Before(first) {
				first = c.NotAfter
			}
		}
		if first.After(latest) {
			latest = first
		}
	}
	return latest
}
