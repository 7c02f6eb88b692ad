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
	"sync/atomic"
	"time"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys verifies host keys against known_hosts files as OpenSSH does:
// plain keys, @cert-authority lines (a host certificate signed by a CA
// trusted for the host) and @revoked lines; and it offers the server the
// host key algorithms of the key types known_hosts has for the host first,
// so that a server with several host keys presents the one that is known.
//
// As ssh reads known_hosts for every connection, every check is against
// the files as they are at that moment: an operator who removes, revokes
// or replaces a key (ssh-keygen -R, a @revoked line, a new file pushed by
// configuration management) has it refused from the next connection on.
// The files are stat'ed for every check and parsed again only when one of
// them changed (see fileStamp).
type hostKeys struct {
	mu   sync.Mutex
	sets map[string]*knownHostsSet // by the files, joined with NUL
	// appending serialises accept-new's writes.
	appending sync.Mutex
	// parses counts the parses of known_hosts files (tests prove with it
	// that unchanged files are not parsed again).
	parses atomic.Uint64
}

// knownHostsSet is one list of known_hosts files (an endpoint's: user
// files, then global ones) and their contents as last parsed.
type knownHostsSet struct {
	hk    *hostKeys
	paths []string
	mu    sync.Mutex // held while parsing
	last  atomic.Pointer[knownHostsDB]
}

// knownHostsDB is the contents of the files of a set at one moment.
type knownHostsDB struct {
	stamps []fileStamp // of the set's paths, taken before they were read
	at     time.Time   // when the stamps were taken
	racy   bool        // the stamps may hide a change (see racyWindow)
	db     *knownhosts.HostKeyDB
	err    error // why the files do not parse
}

// set returns the set of paths; the same one for the same paths.
func (hk *hostKeys) set(paths []string) *knownHostsSet {
	key := strings.Join(paths, "\x00")
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if s, ok := hk.sets[key]; ok {
		return s
	}
	if hk.sets == nil {
		hk.sets = map[string]*knownHostsSet{}
	}
	s := &knownHostsSet{hk: hk, paths: slices.Clone(paths)}
	hk.sets[key] = s
	return s
}

// current returns the files' contents as they are now: those last parsed
// when no file changed since, else parsed again. A missing file is empty,
// as for ssh; db is nil when none exists.
func (s *knownHostsSet) current() *knownHostsDB {
	var buf [4]fileStamp
	at := time.Now()
	stamps := stampsOf(buf[:0], s.paths)
	if d := s.last.Load(); d.holds(stamps, at) {
		return d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.last.Load(); d.holds(stamps, at) {
		return d // parsed while this one waited
	}
	// Stamped again under the lock: the parse reads the files after it.
	d := &knownHostsDB{at: time.Now()}
	d.stamps = stampsOf(nil, s.paths)
	d.racy = racy(d.stamps, d.at)
	var existing []string
	for i, p := range s.paths {
		if d.stamps[i].exists {
			existing = append(existing, p)
		}
	}
	if len(existing) > 0 {
		s.hk.parses.Add(1)
		if d.db, d.err = knownhosts.NewDB(existing...); d.err != nil {
			d.db, d.err = nil, fmt.Errorf("known_hosts: %v", d.err)
		}
	}
	s.last.Store(d)
	return d
}

// holds tells whether d has the contents of files whose stamps were
// stamps at at: none of them changed since d was read, and either d's
// stamps vouch for its contents or d was read after at.
func (d *knownHostsDB) holds(stamps []fileStamp, at time.Time) bool {
	return d != nil && slices.Equal(d.stamps, stamps) && (!d.racy || d.at.After(at))
}

// callback is the host key callback of d (which parsed): with no file,
// every host is unknown.
func (d *knownHostsDB) callback() ssh.HostKeyCallback {
	if d.db == nil {
		return func(string, net.Addr, ssh.PublicKey) error { return &xknownhosts.KeyError{} }
	}
	return checkRevokedCert(d.db.HostKeyCallback())
}

// hostKeyCheck is how one connection checks its host key.
type hostKeyCheck struct {
	cb    ssh.HostKeyCallback
	algos []string
	// set and db are the files the key is checked against and their
	// contents at the check; set is nil when keys are not checked.
	set *knownHostsSet
	db  *knownHostsDB
}

// check returns the host key check for connecting to e, against the
// known_hosts files as they are now. insecure turns checking off
// ([sshnative] host_key_checking = false). An error says why the files
// cannot be used ("known_hosts: FILE:LINE: ...").
func (hk *hostKeys) check(e *endpoint, insecure bool) (hostKeyCheck, error) {
	if insecure || e.strict == "no" {
		return hostKeyCheck{cb: ssh.InsecureIgnoreHostKey(), algos: preferredHostKeyAlgorithms(nil)}, nil
	}
	set := hk.set(e.knownHosts)
	d := set.current()
	if d.err != nil {
		return hostKeyCheck{}, d.err
	}
	var known []string
	if d.db != nil {
		known = d.db.HostKeyAlgorithms(e.addr())
	}
	c := hostKeyCheck{cb: d.callback(), algos: preferredHostKeyAlgorithms(known), set: set, db: d}
	if e.strict == "accept-new" {
		c.cb = hk.acceptNew(c.cb, e)
	}
	return c, nil
}

// seenHostKey is the host key a pooled connection's server presented,
// and the known_hosts contents that last trusted it.
type seenHostKey struct {
	set      *knownHostsSet
	db       *knownHostsDB
	hostname string // as the handshake checked it: ep.addr()
	remote   net.Addr
	key      ssh.PublicKey
}

// stillTrusted checks the key against the known_hosts files as they are
// now, as a new connection would, and returns the refusal: a pooled
// connection is used only while its host key would be accepted. Unchanged
// files cost a stat each. Under accept-new, a key the files no longer
// hold is refused as well: the connection made instead adds it again, as
// ssh would. Called with the connection's pooled.mu held.
func (k *seenHostKey) stillTrusted() error {
	d := k.set.current()
	if d == k.db {
		return nil
	}
	if d.err != nil {
		return d.err
	}
	if err := d.callback()(k.hostname, k.remote, k.key); err != nil {
		return err
	}
	k.db = d
	return nil
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
		hk.appending.Lock()
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
		hk.appending.Unlock()
		if werr != nil {
			return fmt.Errorf("StrictHostKeyChecking accept-new: adding the key to %s: %v", path, werr)
		}
		// The next check finds the file grown, and reads it again.
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
		// Where the keys known for it are, as ssh names the offending
		// line: what the operator fixes.
		where := make([]string, len(keyErr.Want))
		for i, k := range keyErr.Want {
			where[i] = fmt.Sprintf("%s:%d", k.Filename, k.Line)
		}
		return fmt.Sprintf("host key mismatch for %s: the key offered is not the one in known_hosts (%s; possible man-in-the-middle; fix known_hosts if the host was reinstalled)", target, strings.Join(where, ", "))
	case errors.As(err, &keyErr):
		return fmt.Sprintf("host key unknown: %s is not in known_hosts", target)
	case strings.Contains(err.Error(), "ssh: certificate"), strings.Contains(err.Error(), "ssh: principal"), strings.Contains(err.Error(), "ssh: cert"):
		return fmt.Sprintf("host certificate of %s refused: %v", target, err)
	}
	return ""
}
