package sshnative

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys verifies host keys against known_hosts files as OpenSSH does:
// plain keys, @cert-authority lines (a host certificate signed by a CA
// trusted for the host) and @revoked lines; and it offers the server the
// host key algorithms of the key types known_hosts has for the host first,
// so that a server with several host keys presents the one that is known.
type hostKeys struct {
	mu  sync.Mutex
	dbs map[string]*knownhosts.HostKeyDB // by the files, joined with NUL
}

// db returns the parsed known_hosts files among paths that exist (a
// missing file is empty, as for ssh); nil when none exists.
func (hk *hostKeys) db(paths []string) (*knownhosts.HostKeyDB, error) {
	var existing []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			existing = append(existing, p)
		}
	}
	if len(existing) == 0 {
		return nil, nil
	}
	key := strings.Join(existing, "\x00")
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if db, ok := hk.dbs[key]; ok {
		return db, nil
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %v", err)
	}
	if hk.dbs == nil {
		hk.dbs = map[string]*knownhosts.HostKeyDB{}
	}
	hk.dbs[key] = db
	return db, nil
}

// forget drops the parsed files that hold path, which was written to.
func (hk *hostKeys) forget(path string) {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	for key := range hk.dbs {
		if slices.Contains(strings.Split(key, "\x00"), path) {
			delete(hk.dbs, key)
		}
	}
}

// check returns the host key callback and host key algorithms for
// connecting to e. insecure turns checking off ([sshnative]
// host_key_checking = false).
func (hk *hostKeys) check(e *endpoint, insecure bool) (ssh.HostKeyCallback, []string, error) {
	if insecure || e.strict == "no" {
		return ssh.InsecureIgnoreHostKey(), preferredHostKeyAlgorithms(nil), nil
	}
	db, err := hk.db(e.knownHosts)
	if err != nil {
		return nil, nil, err
	}
	var cb ssh.HostKeyCallback
	var known []string
	if db == nil {
		cb = func(string, net.Addr, ssh.PublicKey) error { return &xknownhosts.KeyError{} }
	} else {
		cb = checkRevokedCert(db.HostKeyCallback())
		known = db.HostKeyAlgorithms(e.addr())
	}
	algos := preferredHostKeyAlgorithms(known)
	if e.strict == "accept-new" {
		cb = hk.acceptNew(cb, e)
	}
	return cb, algos, nil
}

// checkRevokedCert refuses a host certificate whose key or signing CA is
// in a @revoked line, as ssh does; the library checks only plain keys
// against @revoked.
func checkRevokedCert(cb ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if cert, ok := key.(*ssh.Certificate); ok {
			for _, k := range []ssh.PublicKey{cert.Key, cert.SignatureKey} {
				var revoked *xknownhosts.RevokedError
				if err := cb(hostname, remote, k); errors.As(err, &revoked) {
					return err
				}
			}
		}
		return cb(hostname, remote, key)
	}
}

// openSSHHostKeyAlgorithms is OpenSSH 9's default HostKeyAlgorithms, in
// its order of preference (ssh -G shows it as hostkeyalgorithms).
var openSSHHostKeyAlgorithms = []string{
	ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoSKED25519v01, ssh.CertAlgoSKECDSA256v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// preferredHostKeyAlgorithms is the host key algorithms offered, as
// OpenSSH's ssh orders them: its default order, with the algorithms of the
// key types known_hosts has for the host (certificate ones for a
// @cert-authority line) first. The server then presents a known key when
// it has one, so a host whose sshd has rsa, ecdsa and ed25519 keys is not
// refused for offering one known_hosts does not list; and a new host
// presents the key ssh would get (ed25519 first), which accept-new
// records. Algorithms the library lacks are left out; a known one OpenSSH
// no longer offers by default (ssh-rsa) comes after the known ones.
func preferredHostKeyAlgorithms(known []string) []string {
	supported := append(ssh.SupportedAlgorithms().HostKeys, ssh.InsecureAlgorithms().HostKeys...)
	var first, rest []string
	for _, a := range openSSHHostKeyAlgorithms {
		switch {
		case !slices.Contains(supported, a):
		case slices.Contains(known, a):
			first = append(first, a)
		default:
			rest = append(rest, a)
		}
	}
	for _, a := range known {
		if slices.Contains(supported, a) && !slices.Contains(first, a) {
			first = append(first, a)
		}
	}
	return append(first, rest...)
}

// acceptNew is StrictHostKeyChecking accept-new: a host known_hosts does
// not know is accepted and its key added to the first user known_hosts
// file, as ssh does (the host name hashed under HashKnownHosts yes, which
// Debian's ssh_config sets); a changed key is still refused.
func (hk *hostKeys) acceptNew(cb ssh.HostKeyCallback, e *endpoint) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		if err == nil || !knownhosts.IsHostUnknown(err) || len(e.knownHosts) == 0 {
			return err
		}
		path := e.knownHosts[0]
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("StrictHostKeyChecking accept-new: %v", err)
		}
		hk.mu.Lock()
		f, werr := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if werr == nil {
			name := knownhosts.Normalize(hostname)
			if e.hashKnownHosts {
				name = xknownhosts.HashHostname(name)
			}
			_, werr = fmt.Fprintln(f, knownhosts.Line([]string{name}, key))
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
		}
		hk.mu.Unlock()
		if werr != nil {
			return fmt.Errorf("StrictHostKeyChecking accept-new: adding the key to %s: %v", path, werr)
		}
		hk.forget(path)
		return nil
	}
}

// hostKeyError says why a host key was refused, or "" when err is not a
// host key error.
func hostKeyError(err error, target string) string {
	var keyErr *xknownhosts.KeyError
	var revoked *xknownhosts.RevokedError
	switch {
	case errors.As(err, &revoked):
		return fmt.Sprintf("host key of %s is revoked: known_hosts has it in a @revoked line (%s:%d)", target, revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return fmt.Sprintf("host key mismatch for %s: the key offered is not the one in known_hosts (possible man-in-the-middle; fix known_hosts if the host was reinstalled)", target)
	case errors.As(err, &keyErr):
		return fmt.Sprintf("host key unknown: %s is not in known_hosts", target)
	case strings.Contains(err.Error(), "ssh: certificate"), strings.Contains(err.Error(), "ssh: principal"), strings.Contains(err.Error(), "ssh: cert"):
		return fmt.Sprintf("host certificate of %s refused: %v", target, err)
	}
	return ""
}
