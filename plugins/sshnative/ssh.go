package sshnative

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/0ops/exed/inventory"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Defaults for SSHOptions.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 30 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
)

// SSHOptions configure connections to hosts that are not local.
type SSHOptions struct {
	// User logs in when the host sets no ansible_user; empty: the current user.
	User string
	// KeyFiles are private keys tried for every host (a host's
	// ansible_ssh_private_key_file comes first); empty: ~/.ssh/id_ed25519,
	// id_ecdsa and id_rsa, those that exist.
	KeyFiles []string
	// KnownHosts files verify host keys; empty: ~/.ssh/known_hosts.
	KnownHosts []string
	// InsecureIgnoreHostKey turns host key checking off. It is the explicit
	// opt-out of [sshnative] host_key_checking = false; never the default.
	InsecureIgnoreHostKey bool
	// NoAgent stops the use of ssh-agent (SSH_AUTH_SOCK).
	NoAgent        bool
	ConnectTimeout time.Duration // TCP connect plus SSH handshake
	KeepAlive      time.Duration // interval of keepalive requests on pooled connections
	IdleTimeout    time.Duration // unused pooled connections are closed after this
}

// pool keeps one SSH connection per inventory host and reuses it across
// operations and jobs.
type pool struct {
	opts     SSHOptions
	auth     []ssh.AuthMethod
	hostKeys ssh.HostKeyCallback

	mu    sync.Mutex
	conns map[string]*pooled
	stop  chan struct{}
}

type pooled struct {
	mu       sync.Mutex // held while dialling
	client   *ssh.Client
	lastUsed time.Time
	active   int
}

func newPool(opts SSHOptions) (*pool, error) {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	home, _ := os.UserHomeDir()
	if opts.User == "" {
		if u, err := user.Current(); err == nil {
			opts.User = u.Username
		}
	}
	p := &pool{opts: opts, conns: map[string]*pooled{}, stop: make(chan struct{})}
	if opts.InsecureIgnoreHostKey {
		p.hostKeys = ssh.InsecureIgnoreHostKey()
	} else {
		files := opts.KnownHosts
		if len(files) == 0 {
			files = []string{filepath.Join(home, ".ssh", "known_hosts")}
		}
		var existing []string
		for _, f := range files {
			if _, err := os.Stat(f); err == nil {
				existing = append(existing, f)
			} else if len(opts.KnownHosts) > 0 {
				return nil, fmt.Errorf("known_hosts file %s: %w", f, err)
			}
		}
		if len(existing) == 0 {
			// No file at all: every host is unknown, which is refused.
			p.hostKeys = func(string, net.Addr, ssh.PublicKey) error {
				return &knownhosts.KeyError{}
			}
		} else {
			cb, err := knownhosts.New(existing...)
			if err != nil {
				return nil, fmt.Errorf("known_hosts: %w", err)
			}
			p.hostKeys = cb
		}
	}
	keyFiles := opts.KeyFiles
	if len(keyFiles) == 0 {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if f := filepath.Join(home, ".ssh", name); fileExists(f) {
				keyFiles = append(keyFiles, f)
			}
		}
	}
	var signers []ssh.Signer
	for _, f := range keyFiles {
		s, err := loadKey(f)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	if len(signers) > 0 {
		p.auth = append(p.auth, ssh.PublicKeys(signers...))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !opts.NoAgent {
		p.auth = append(p.auth, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			c, err := net.Dial("unix", sock)
			if err != nil {
				return nil, err
			}
			// The agent connection lives as long as the handshake needs it;
			// the signers keep using it, so it is not closed here.
			return agent.NewClient(c).Signers()
		}))
	}
	go p.reap()
	return p, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func loadKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return s, nil
}

// reap closes connections unused for longer than the idle timeout.
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
		p.mu.Lock()
		for name, pc := range p.conns {
			if pc.active == 0 && pc.client != nil && now.Sub(pc.lastUsed) > p.opts.IdleTimeout {
				pc.client.Close()
				delete(p.conns, name)
			}
		}
		p.mu.Unlock()
	}
}

// close closes every pooled connection.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	for name, pc := range p.conns {
		if pc.client != nil {
			pc.client.Close()
		}
		delete(p.conns, name)
	}
}

// acquire returns a connected client for the host, dialling if needed, and
// marks it in use until release.
func (p *pool) acquire(ctx context.Context, h *inventory.Host) (*ssh.Client, *pooled, error) {
	p.mu.Lock()
	pc, ok := p.conns[h.Name]
	if !ok {
		pc = &pooled{}
		p.conns[h.Name] = pc
	}
	pc.active++
	p.mu.Unlock()

	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.client == nil {
		c, err := p.dial(ctx, h)
		if err != nil {
			p.release(h.Name, pc)
			return nil, nil, err
		}
		pc.client = c
		go p.keepAlive(h.Name, pc, c)
	}
	return pc.client, pc, nil
}

func (p *pool) release(name string, pc *pooled) {
	p.mu.Lock()
	pc.active--
	pc.lastUsed = time.Now()
	p.mu.Unlock()
}

// drop forgets a connection that failed, so the next use re-dials.
func (p *pool) drop(name string, pc *pooled, c *ssh.Client) {
	c.Close()
	pc.mu.Lock()
	if pc.client == c {
		pc.client = nil
	}
	pc.mu.Unlock()
}

func (p *pool) keepAlive(name string, pc *pooled, c *ssh.Client) {
	t := time.NewTicker(p.opts.KeepAlive)
	defer t.Stop()
	dead := make(chan struct{})
	go func() { _ = c.Wait(); close(dead) }()
	for {
		select {
		case <-dead:
			p.drop(name, pc, c)
			return
		case <-p.stop:
			return
		case <-t.C:
			res := make(chan error, 1)
			go func() { _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); res <- err }()
			select {
			case err := <-res:
				if err != nil {
					p.drop(name, pc, c)
					return
				}
			case <-time.After(p.opts.ConnectTimeout):
				p.drop(name, pc, c)
				return
			}
		}
	}
}

// dial connects and authenticates, classifying failures for the event's msg.
func (p *pool) dial(ctx context.Context, h *inventory.Host) (*ssh.Client, error) {
	hc, err := h.Conn()
	if err != nil {
		return nil, err
	}
	addr, port := hc.Address, "22"
	if hc.Port != 0 {
		port = strconv.Itoa(hc.Port)
	}
	u := hc.User
	if u == "" {
		u = p.opts.User
	}
	auth := p.auth
	if kf := hc.PrivateKeyFile; kf != "" {
		s, err := loadKey(expandHome(kf))
		if err != nil {
			return nil, err
		}
		auth = append([]ssh.AuthMethod{ssh.PublicKeys(s)}, auth...)
	}
	if len(auth) == 0 {
		return nil, errors.New("authentication failed: no private key or ssh-agent available")
	}
	target := net.JoinHostPort(addr, port)
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, classifyDial(err, target)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, target, &ssh.ClientConfig{
		User: u, Auth: auth, HostKeyCallback: p.hostKeys, Timeout: p.opts.ConnectTimeout,
	})
	stopWatch()
	if err != nil {
		conn.Close()
		var netErr net.Error
		if ctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout() {
			return nil, fmt.Errorf("connection timed out: ssh handshake with %s took longer than %s", target, p.opts.ConnectTimeout)
		}
		return nil, classifyHandshake(err, target)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

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

func classifyHandshake(err error, target string) error {
	var keyErr *knownhosts.KeyError
	switch {
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return fmt.Errorf("host key mismatch for %s: the key offered is not the one in known_hosts (possible man-in-the-middle; fix known_hosts if the host was reinstalled)", target)
	case errors.As(err, &keyErr):
		return fmt.Errorf("host key unknown: %s is not in known_hosts", target)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("authentication failed for %s", target)
	}
	return fmt.Errorf("ssh handshake with %s failed: %v", target, err)
}
