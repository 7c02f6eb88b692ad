package sshnative

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults for SSHOptions.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 30 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
)

// SSHOptions configure connections to hosts that are not local.
type SSHOptions struct {
	// User logs in when the host sets no ansible_user (nor
	// ansible_ssh_user); empty: ssh's choice, ssh_config's User, else the
	// current user. As Ansible's remote_user, it is also the user become
	// compares its user with.
	User string
	// KeyFiles are private keys tried for every host, after the host's own
	// (ansible_private_key_file, ssh_config's IdentityFile); empty: the
	// host's own, or ssh's defaults ~/.ssh/id_ed25519, id_ecdsa and id_rsa
	// for a host with none. A key that cannot be used is skipped and named
	// in the message of a failed login.
	KeyFiles []string
	// KnownHosts files verify host keys where ssh_config sets no
	// UserKnownHostsFile; empty: ~/.ssh/known_hosts (and known_hosts2).
	// /etc/ssh/ssh_known_hosts is read too, as ssh reads it.
	KnownHosts []string
	// InsecureIgnoreHostKey turns host key checking off. It is the explicit
	// opt-out of [sshnative] host_key_checking = false; never the default.
	InsecureIgnoreHostKey bool
	// NoAgent stops the use of ssh-agent (SSH_AUTH_SOCK).
	NoAgent bool
	// SSHConfig is the ssh_config file applied as ssh applies it (Host and
	// Match blocks; HostName, Port, User, IdentityFile, IdentitiesOnly,
	// ProxyJump, UserKnownHostsFile, StrictHostKeyChecking,
	// ConnectTimeout, ServerAliveInterval): "" for ssh's own,
	// ~/.ssh/config then /etc/ssh/ssh_config, those that exist; "none"
	// for none. A host's -F in its ssh arguments replaces it.
	SSHConfig string
	// ConnectTimeout bounds TCP connect plus SSH handshake; zero:
	// ssh_config's ConnectTimeout, else DefaultConnectTimeout. Set, it
	// wins over ssh_config, as Ansible's timeout does.
	ConnectTimeout time.Duration
	// KeepAlive is the interval of keepalive requests on pooled
	// connections where ssh_config sets no ServerAliveInterval.
	KeepAlive   time.Duration
	IdleTimeout time.Duration // unused pooled connections are closed after this
	// HostDefaults are connection variables every host has unless its
	// inventory sets them (Ansible's configuration: ansible.cfg's
	// remote_port, private_key_file, [privilege_escalation] and
	// [ssh_connection] settings, as ansible_port, ansible_become, ...).
	HostDefaults map[string]string
}

// pool keeps one SSH connection per inventory host, and one per jump host
// login shared by the hosts behind it, and reuses them across operations
// and jobs.
type pool struct {
	opts     SSHOptions
	obs      Observer
	keys     *keyring
	hostKeys *hostKeys

	mu    sync.Mutex
	conns map[string]*pooled
	stop  chan struct{}
}

type pooled struct {
	mu       sync.Mutex // held while dialling
	name     string     // its key in pool.conns
	client   *ssh.Client
	lastUsed time.Time
	active   int
	// parent is the jump host connection client runs through; it stays
	// in use (active) while client lives.
	parent *pooled
}

func newPool(opts SSHOptions, obs Observer) (*pool, error) {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	for _, f := range opts.KnownHosts {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("known_hosts file %s: %w", f, err)
		}
	}
	p := &pool{opts: opts, obs: obs, keys: newKeyring(opts), hostKeys: &hostKeys{}, conns: map[string]*pooled{}, stop: make(chan struct{})}
	for _, f := range opts.KeyFiles {
		// A configured key that is not there is a mistake to say at start;
		// an encrypted one may be in ssh-agent.
		if s, _, problem := p.keys.load(f); s == nil && !strings.HasPrefix(problem, "passphrase") {
			return nil, fmt.Errorf("private key %s: %s", f, problem)
		}
	}
	go p.reap()
	return p, nil
}

// reap closes connections unused for longer than the idle timeout; a jump
// host's connection is in use while a connection through it lives.
func (p *pool) reap() {
	t := time.NewTicker(p.opts.IdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var idle []*pooled
		p.mu.Lock()
		for name, pc := range p.conns {
			if pc.active == 0 && pc.client != nil && now.Sub(pc.lastUsed) > p.opts.IdleTimeout {
				idle = append(idle, pc)
				delete(p.conns, name)
			}
		}
		p.mu.Unlock()
		for _, pc := range idle {
			p.closeConn(pc)
		}
	}
}

// closeConn closes a connection taken out of the pool, and releases the
// jump host connection it ran through.
func (p *pool) closeConn(pc *pooled) {
	pc.mu.Lock()
	c, parent := pc.client, pc.parent
	pc.client, pc.parent = nil, nil
	pc.mu.Unlock()
	if c != nil {
		c.Close()
		p.obs.Pooled(-1)
	}
	if parent != nil {
		p.release(parent)
	}
}

// close closes every pooled connection (closing a jump host's first ends
// those through it too).
func (p *pool) close() {
	p.mu.Lock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	var all []*pooled
	for name, pc := range p.conns {
		all = append(all, pc)
		delete(p.conns, name)
	}
	p.mu.Unlock()
	for _, pc := range all {
		p.closeConn(pc)
	}
}

// acquire returns a connected client for the endpoint pooled under name,
// dialling if needed (through its jump hosts, themselves pooled), and
// marks it in use until release.
func (p *pool) acquire(ctx context.Context, name string, ep *endpoint) (*ssh.Client, *pooled, error) {
	p.mu.Lock()
	pc, ok := p.conns[name]
	if !ok {
		pc = &pooled{name: name}
		p.conns[name] = pc
	}
	pc.active++
	p.mu.Unlock()

	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.client == nil {
		began := time.Now()
		c, in, parent, err := p.dial(ctx, ep)
		p.obs.Dialed(time.Since(began), err)
		if err != nil {
			p.release(pc)
			return nil, nil, err
		}
		pc.client, pc.parent = c, parent
		p.obs.Pooled(1)
		go p.serve(pc, c, in, ep.keepAlive, p.timeout(ep))
	}
	return pc.client, pc, nil
}

func (p *pool) release(pc *pooled) {
	p.mu.Lock()
	pc.active--
	pc.lastUsed = time.Now()
	p.mu.Unlock()
}

// drop forgets a connection that failed, so the next use re-dials.
func (p *pool) drop(pc *pooled, c *ssh.Client) {
	c.Close()
	pc.mu.Lock()
	var parent *pooled
	if pc.client == c {
		pc.client = nil
		parent, pc.parent = pc.parent, nil
		p.obs.Pooled(-1)
	}
	pc.mu.Unlock()
	if parent != nil {
		p.release(parent)
	}
}

// incoming is what the server of a connection sends unasked: global
// requests (OpenSSH's hostkeys-00@openssh.com, keepalives) and channel
// opens. Both close when the connection ends.
type incoming struct {
	reqs  <-chan *ssh.Request
	chans <-chan ssh.NewChannel
}

// serve is the one goroutine of a pooled connection besides those of
// x/crypto/ssh: it answers what the server sends unasked as ssh.Client
// would (global requests refused, channel opens rejected), sends
// keepalive requests every interval (none when it is 0), and drops the
// connection when it ends or a keepalive goes unanswered for timeout.
// Doing in one goroutine what took four (ssh.Client's two handlers, a
// waiter and a keepalive loop) saves their stacks: a third of the memory
// of a pooled connection.
func (p *pool) serve(pc *pooled, c *ssh.Client, in incoming, interval, timeout time.Duration) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	late := time.NewTimer(timeout)
	late.Stop()
	defer late.Stop()
	var answer chan error // of the keepalive sent, until it is answered
	for {
		select {
		case r, ok := <-in.reqs:
			if !ok {
				p.drop(pc, c) // the connection ended
				return
			}
			_ = r.Reply(false, nil)
		case ch, ok := <-in.chans:
			if !ok {
				p.drop(pc, c)
				return
			}
			_ = ch.Reject(ssh.UnknownChannelType, "unknown channel type: "+ch.ChannelType())
		case <-p.stop:
			return
		case <-tick:
			if answer != nil {
				continue // the last one is still unanswered: late decides
			}
			answer = make(chan error, 1)
			go func(answer chan<- error) {
				_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
				answer <- err
			}(answer)
			late.Reset(timeout)
		case err := <-answer:
			answer = nil
			late.Stop()
			if err != nil {
				p.drop(pc, c)
				return
			}
		case <-late.C:
			p.drop(pc, c)
			return
		}
	}
}

// timeout is the connect timeout for ep: its ConnectTimeout (for a host,
// the configured one comes first, as Ansible passes it to ssh), else the
// configured one (for a jump host), else DefaultConnectTimeout.
func (p *pool) timeout(ep *endpoint) time.Duration {
	switch {
	case ep.connectTimeout > 0:
		return ep.connectTimeout
	case p.opts.ConnectTimeout > 0:
		return p.opts.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// jumpName is the pool name of a jump host login.
func jumpName(ep *endpoint) string { return "\x00jump " + ep.key() }

// dial connects and authenticates to ep, through its jump hosts if it has
// any, classifying failures for the event's msg. parent is the jump host
// connection it runs through, held in use for it.
func (p *pool) dial(ctx context.Context, ep *endpoint) (*ssh.Client, incoming, *pooled, error) {
	target := ep.addr()
	timeout := p.timeout(ep)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	var parent *pooled
	if ep.jump != nil {
		for attempt := 0; ; attempt++ {
			jc, jpc, err := p.acquire(ctx, jumpName(ep.jump), ep.jump)
			if err != nil {
				return nil, incoming{}, nil, jumpFailed(ep.jump, err)
			}
			conn, err = jc.DialContext(ctx, "tcp", target)
			if err == nil {
				parent = jpc
				break
			}
			var rejected *ssh.OpenChannelError
			if attempt == 0 && ctx.Err() == nil && !errors.As(err, &rejected) {
				// Not a refusal by the jump host: its pooled connection
				// is gone (the host restarted) before its keepalive or
				// its end was noticed. Dial the jump host again, once.
				p.drop(jpc, jc)
				p.release(jpc)
				continue
			}
			p.release(jpc)
			if ctx.Err() != nil {
				return nil, incoming{}, nil, fmt.Errorf("connection timed out: %s through %s", target, jumpLabel(ep.jump))
			}
			return nil, incoming{}, nil, fmt.Errorf("cannot connect to %s through %s: %v", target, jumpLabel(ep.jump), strings.TrimPrefix(err.Error(), "ssh: "))
		}
	} else {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, incoming{}, nil, classifyDial(err, target)
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
	}
	c, in, err := p.handshake(ctx, conn, ep, timeout)
	if err != nil {
		conn.Close()
		if parent != nil {
			p.release(parent)
		}
		return nil, incoming{}, nil, err
	}
	if ep.jump == nil {
		_ = conn.SetDeadline(time.Time{})
	}
	return c, in, parent, nil
}

// jumpLabel names a jump host in messages: "jump host SPEC (user@addr)".
func jumpLabel(ep *endpoint) string {
	return fmt.Sprintf("%s (%s@%s)", ep.name, ep.user, ep.addr())
}

// jumpError is a failure to reach a jump host; a host behind a chain
// of them names only the hop that failed.
type jumpError struct {
	label string
	err   error
}

func (e *jumpError) Error() string { return e.label + ": " + e.err.Error() }
func (e *jumpError) Unwrap() error { return e.err }

func jumpFailed(ep *endpoint, err error) error {
	var je *jumpError
	if errors.As(err, &je) {
		return err
	}
	return &jumpError{label: jumpLabel(ep), err: err}
}

// handshake runs the SSH handshake on conn: host key verified against
// known_hosts (with the host key algorithms it knows for ep first), and
// key authentication.
func (p *pool) handshake(ctx context.Context, conn net.Conn, ep *endpoint, timeout time.Duration) (*ssh.Client, incoming, error) {
	target := ep.addr()
	hostKeyCB, algos, err := p.hostKeys.check(ep, p.opts.InsecureIgnoreHostKey)
	if err != nil {
		return nil, incoming{}, err
	}
	// With no key to offer the handshake still runs, as ssh's does: the
	// key exchange checks the host key before any login, so a changed
	// host key is what the host reports, not the missing key.
	auth, tried, done := p.keys.authFor(ep)
	defer done()
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, target, &ssh.ClientConfig{
		User: ep.user, Auth: auth, HostKeyCallback: hostKeyCB, HostKeyAlgorithms: algos, Timeout: timeout,
	})
	stopWatch()
	if err != nil {
		var netErr net.Error
		if ctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout() {
			return nil, incoming{}, fmt.Errorf("connection timed out: ssh handshake with %s took longer than %s", target, timeout)
		}
		if msg := hostKeyError(err, target); msg != "" {
			return nil, incoming{}, errors.New(msg)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			if len(auth) == 0 {
				return nil, incoming{}, fmt.Errorf("authentication failed for %s@%s: no usable private key or ssh-agent key (%s)", ep.user, target, tried)
			}
			return nil, incoming{}, fmt.Errorf("authentication failed for %s@%s; %s", ep.user, target, tried)
		}
		return nil, incoming{}, fmt.Errorf("ssh handshake with %s failed: %v", target, err)
	}
	// The client's own handlers of what the server sends unasked end at
	// once on closed channels; serve answers it instead.
	return ssh.NewClient(cc, noChannels, noRequests), incoming{reqs: reqs, chans: chans}, nil
}

// noChannels and noRequests are closed: an ssh.Client given them runs no
// handler of its own (see serve).
var (
	noChannels = func() chan ssh.NewChannel { c := make(chan ssh.NewChannel); close(c); return c }()
	noRequests = func() chan *ssh.Request { c := make(chan *ssh.Request); close(c); return c }()
)

func classifyDial(err error, target string) error {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve host: %s", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connection refused: %s", target)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("connection timed out: %s", target)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("no route to host: %s", target)
	}
	return fmt.Errorf("cannot connect to %s: %v", target, err)
}
