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
	// in the message of a failed login. Key files are read again for the
	// next connection when they change, as ssh reads them per connection.
	KeyFiles []string
	// KnownHosts files verify host keys where ssh_config sets no
	// UserKnownHostsFile; empty: ~/.ssh/known_hosts (and known_hosts2).
	// /etc/ssh/ssh_known_hosts is read too, as ssh reads it. Every
	// connection reads the files as they are, as ssh does, and a pooled
	// connection is used only while they still trust its host key. Each
	// must exist (New's error otherwise).
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
	// retired are connections no longer handed out (their host key, or a
	// jump host's, is no longer trusted; or they ended) while leases of
	// them were still out: each is closed once the last is released, so
	// that the commands running over it finish.
	retired map[*ssh.Client]*retired
	stop    chan struct{}
}

// pooled is the pool's slot for one host login: its connection, if any.
type pooled struct {
	// mu guards client, parent and seen, and is held while dialling;
	// pool.mu guards lastUsed, active and users.
	mu       sync.Mutex
	name     string // its key in pool.conns
	client   *ssh.Client
	lastUsed time.Time
	// active counts the leases of the slot not yet released (and the
	// acquires under way), whatever their connection: the reaper closes
	// no connection of a slot in use.
	active int
	// users counts the leases of client not yet released.
	users int
	// parent is the lease of the jump host connection client runs
	// through, held while client lives.
	parent lease
	// seen is client's host key, checked again against known_hosts before
	// each use; nil when host keys are not checked.
	seen *seenHostKey
}

// lease is one use of a pooled connection, from acquire to release: the
// slot and the connection it got.
type lease struct {
	pc *pooled
	c  *ssh.Client // nil: the acquire failed
}

// retired is a connection retired while leased.
type retired struct {
	users  int   // its leases not yet released
	parent lease // released once it is closed
	closed bool  // it ended or was closed (counted out of Observer.Pooled)
}

func newPool(opts SSHOptions, obs Observer) (*pool, error) {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if err := checkKnownHosts(opts.KnownHosts); err != nil {
		return nil, err
	}
	p := &pool{opts: opts, obs: obs, keys: newKeyring(opts), hostKeys: &hostKeys{}, conns: map[string]*pooled{},
		retired: map[*ssh.Client]*retired{}, stop: make(chan struct{})}
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

// checkKnownHosts refuses known_hosts files ([sshnative] known_hosts)
// that do not exist: a mistake to say at start, and at a reload.
func checkKnownHosts(files []string) error {
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("known_hosts file %s: %w", f, err)
		}
	}
	return nil
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
	pc.client, pc.parent, pc.seen = nil, lease{}, nil
	pc.mu.Unlock()
	if c != nil {
		c.Close()
		p.obs.Pooled(-1)
	}
	if parent.pc != nil {
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
	var old []*ssh.Client
	for c, r := range p.retired {
		if !r.closed {
			r.closed = true
			old = append(old, c)
		}
	}
	p.mu.Unlock()
	for _, c := range old {
		c.Close()
		p.obs.Pooled(-1)
	}
	for _, pc := range all {
		p.closeConn(pc)
	}
}

// acquire returns a connected client for the endpoint pooled under name,
// dialling if needed (through its jump hosts, themselves pooled), leased
// until release. A pooled connection whose host key, or a jump host's,
// known_hosts no longer trusts is not handed out: it is retired (closed
// once the commands running over it end), and a new one dialled, as ssh
// would for a new command.
func (p *pool) acquire(ctx context.Context, name string, ep *endpoint) (lease, error) {
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
	if pc.client != nil && !p.trusted(pc) {
		// The dial below says why, as a new connection would.
		p.retire(pc)
	}
	if pc.client == nil {
		began := time.Now()
		c, in, parent, seen, err := p.dial(ctx, ep)
		p.obs.Dialed(time.Since(began), err)
		if err != nil {
			p.release(lease{pc: pc})
			return lease{}, err
		}
		pc.client, pc.parent, pc.seen = c, parent, seen
		p.obs.Pooled(1)
		go p.serve(pc, c, in, ep.keepAlive, p.timeout(ep))
	}
	p.mu.Lock()
	pc.users++
	p.mu.Unlock()
	return lease{pc: pc, c: pc.client}, nil
}

// trusted tells whether the host key of pc's connection, and those of
// the jump host connections it runs through, are trusted by the
// known_hosts files as they are now: OpenSSH checks them for every
// connection, a jump host's for every connection through it. Called with
// pc.mu held; it takes the jump hosts' in turn, and retires a jump host
// connection whose key is no longer trusted.
func (p *pool) trusted(pc *pooled) bool {
	if pc.seen != nil && pc.seen.stillTrusted() != nil {
		return false
	}
	up := pc.parent.pc
	if up == nil {
		return true
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.client != pc.parent.c {
		return false // retired or ended: pc's connection through it is too
	}
	if !p.trusted(up) {
		p.retire(up)
		return false
	}
	return true
}

// retire takes pc's connection out of the slot, with pc.mu held, so that
// the next acquire dials again. It is closed now if no lease of it is
// out, else when the last is released.
func (p *pool) retire(pc *pooled) {
	c, parent := pc.client, pc.parent
	pc.client, pc.parent, pc.seen = nil, lease{}, nil
	p.mu.Lock()
	users := pc.users
	pc.users = 0
	if users > 0 {
		p.retired[c] = &retired{users: users, parent: parent}
	}
	p.mu.Unlock()
	if users == 0 {
		c.Close()
		p.obs.Pooled(-1)
		if parent.pc != nil {
			p.release(parent)
		}
	}
}

// release ends a lease; the last lease of a retired connection closes it.
func (p *pool) release(l lease) {
	var closing *retired
	p.mu.Lock()
	l.pc.active--
	l.pc.lastUsed = time.Now()
	if l.c != nil {
		if r, ok := p.retired[l.c]; ok {
			if r.users--; r.users == 0 {
				delete(p.retired, l.c)
				if !r.closed {
					closing = r
				}
			}
		} else {
			l.pc.users--
		}
	}
	p.mu.Unlock()
	if closing != nil {
		l.c.Close()
		p.obs.Pooled(-1)
		if closing.parent.pc != nil {
			p.release(closing.parent)
		}
	}
}

// drop closes a connection that failed or ended, so the next use
// re-dials; leases of it still out are released as those of a retired
// one.
func (p *pool) drop(pc *pooled, c *ssh.Client) {
	c.Close()
	var parent lease
	pc.mu.Lock()
	p.mu.Lock()
	if pc.client == c {
		parent = pc.parent
		pc.client, pc.parent, pc.seen = nil, lease{}, nil
		if pc.users > 0 {
			p.retired[c] = &retired{users: pc.users, closed: true}
		}
		pc.users = 0
		p.obs.Pooled(-1)
	} else if r, ok := p.retired[c]; ok && !r.closed {
		r.closed = true
		parent, r.parent = r.parent, lease{}
		p.obs.Pooled(-1)
	}
	p.mu.Unlock()
	pc.mu.Unlock()
	if parent.pc != nil {
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
// connection it runs through, held in use for it; seen is the host key
// it trusted (nil when not checked).
func (p *pool) dial(ctx context.Context, ep *endpoint) (*ssh.Client, incoming, lease, *seenHostKey, error) {
	target := ep.addr()
	timeout := p.timeout(ep)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	var parent lease
	if ep.jump != nil {
		for attempt := 0; ; attempt++ {
			jl, err := p.acquire(ctx, jumpName(ep.jump), ep.jump)
			if err != nil {
				return nil, incoming{}, lease{}, nil, jumpFailed(ep.jump, err)
			}
			conn, err = jl.c.DialContext(ctx, "tcp", target)
			if err == nil {
				parent = jl
				break
			}
			var rejected *ssh.OpenChannelError
			if attempt == 0 && ctx.Err() == nil && !errors.As(err, &rejected) {
				// Not a refusal by the jump host: its pooled connection
				// is gone (the host restarted) before its keepalive or
				// its end was noticed. Dial the jump host again, once.
				p.drop(jl.pc, jl.c)
				p.release(jl)
				continue
			}
			p.release(jl)
			if ctx.Err() != nil {
				return nil, incoming{}, lease{}, nil, fmt.Errorf("connection timed out: %s through %s", target, jumpLabel(ep.jump))
			}
			return nil, incoming{}, lease{}, nil, fmt.Errorf("cannot connect to %s through %s: %v", target, jumpLabel(ep.jump), strings.TrimPrefix(err.Error(), "ssh: "))
		}
	} else {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, incoming{}, lease{}, nil, classifyDial(err, target)
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
	}
	c, in, seen, err := p.handshake(ctx, conn, ep, timeout)
	if err != nil {
		conn.Close()
		if parent.pc != nil {
			p.release(parent)
		}
		return nil, incoming{}, lease{}, nil, err
	}
	if ep.jump == nil {
		_ = conn.SetDeadline(time.Time{})
	}
	return c, in, parent, seen, nil
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
// known_hosts as it is now (with the host key algorithms it knows for ep
// first), and key authentication. seen is the host key trusted, for
// checking it again while the connection is pooled; nil when host keys
// are not checked.
func (p *pool) handshake(ctx context.Context, conn net.Conn, ep *endpoint, timeout time.Duration) (*ssh.Client, incoming, *seenHostKey, error) {
	target := ep.addr()
	check, err := p.hostKeys.check(ep, p.opts.InsecureIgnoreHostKey)
	if err != nil {
		return nil, incoming{}, nil, err
	}
	hostKeyCB := check.cb
	var seen *seenHostKey
	if check.set != nil {
		hostKeyCB = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := check.cb(hostname, remote, key)
			if err == nil {
				// Under accept-new the key may be one just added, which
				// check.db lacks: the next check reads the file again.
				seen = &seenHostKey{set: check.set, db: check.db, hostname: hostname, remote: remote, key: key}
			}
			return err
		}
	}
	// With no key to offer the handshake still runs, as ssh's does: the
	// key exchange checks the host key before any login, so a changed
	// host key is what the host reports, not the missing key.
	auth, tried, done := p.keys.authFor(ep)
	defer done()
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, target, &ssh.ClientConfig{
		User: ep.user, Auth: auth, HostKeyCallback: hostKeyCB, HostKeyAlgorithms: check.algos, Timeout: timeout,
	})
	stopWatch()
	if err != nil {
		var netErr net.Error
		if ctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout() {
			return nil, incoming{}, nil, fmt.Errorf("connection timed out: ssh handshake with %s took longer than %s", target, timeout)
		}
		if msg := hostKeyError(err, target); msg != "" {
			return nil, incoming{}, nil, errors.New(msg)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			if len(auth) == 0 {
				return nil, incoming{}, nil, fmt.Errorf("authentication failed for %s@%s: no usable private key or ssh-agent key (%s)", ep.user, target, tried)
			}
			return nil, incoming{}, nil, fmt.Errorf("authentication failed for %s@%s; %s", ep.user, target, tried)
		}
		return nil, incoming{}, nil, fmt.Errorf("ssh handshake with %s failed: %v", target, err)
	}
	// The client's own handlers of what the server sends unasked end at
	// once on closed channels; serve answers it instead.
	return ssh.NewClient(cc, noChannels, noRequests), incoming{reqs: reqs, chans: chans}, seen, nil
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
