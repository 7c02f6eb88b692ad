// Package auth reads exed's credentials file (the [api] auth_token_file):
// who may call the API, under which name, and what each may do.
//
// One credential per line; blank lines and lines starting with # are
// ignored. The first field is the credential, the others are key=value
// scopes:
//
//	<credential> [name=NAME] [ops=OP,...] [hosts=PATTERN] [jobs=own|all]
//
// The credential is a bearer token as written (plain text), "sha256:" and
// the 64 hex digits of the SHA-256 of a token (so the file need not hold
// the token itself: printf %s TOKEN | sha256sum), or "cert:" and the name
// a client certificate carries in its Common Name or a DNS or e-mail
// Subject Alternative Name (mutual TLS, [api] tls_client_ca).
//
// A key that is left out does not limit: a line holding only a token,
// the file format of earlier versions, gives full access. The scopes:
//
//   - name: who the credential stands for, recorded as the user of every
//     job it submits and in the audit trail (1-64 of A-Z a-z 0-9 . _ @ -).
//     Default: "token#N" for the token on line N, NAME for cert:NAME.
//     Several credentials may share a name (a token being rotated); their
//     jobs are then the same user's.
//   - ops: what it may do, comma-separated: ping, facter, service, execute
//     (sync GET and async POST alike), deploy (any role) or deploy:GLOB
//     (roles whose name matches the shell glob), tasks (any task type) or
//     tasks:GLOB, read (list and read jobs, follow them, list targets and
//     task types; implied by every operation above), metrics (the metrics
//     endpoint, for scrapers), or all. A line with ops=read is read-only:
//     it can list and follow, but not submit, cancel or delete.
//   - hosts: an Ansible host pattern (web*, web:&prod, all:!db*); a request
//     with a target it does not select is refused, and /target lists only
//     the hosts it selects.
//   - jobs: own (the jobs submitted under its name only: any other is "no
//     such job") or all. A token line with jobs=own must have a name: its
//     default, token#N, follows the line's number, and would pass its
//     jobs to another line when lines above it are added or removed.
//
// Tokens are compared by their SHA-256 sums in constant time, against
// every line, so neither the token's length nor which line matched shows
// in the timing. Nothing in this package logs or returns a token.
//
// Keeper holds the file in force across reloads; ClientCAs holds the
// client certificate authorities ([api] tls_client_ca) in force, against
// which a connection's certificate is verified again at each request,
// once they change or it expires.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
)

// MinTokenLength is the length under which a plain token is warned about:
// 16 random characters are beyond guessing over HTTP; "s3cret" is not.
const MinTokenLength = 16

// Permission is one thing a credential may do that is not an operation on
// hosts.
type Permission string

// Permissions besides the operations.
const (
	// PermRead lists and reads jobs, follows them, lists targets and task
	// types. Every operation implies it.
	PermRead Permission = "read"
	// PermMetrics reads the metrics endpoint. Only "all" or "metrics"
	// grants it: a scraper's credential needs nothing else.
	PermMetrics Permission = "metrics"
)

// Scope is what one credential may do. The zero Scope allows nothing; Full
// allows everything.
type Scope struct {
	// AllOps allows every operation, role and task type, and metrics.
	AllOps bool
	// Ops are the operations allowed (any role or task type for deploy and
	// task unless Roles or TaskTypes limit them).
	Ops map[exe.Operate]bool
	// Roles and TaskTypes, when not nil, are the shell globs (path.Match)
	// of the deploy roles and task types allowed.
	Roles, TaskTypes []string
	Read, Metrics    bool
	// Hosts is the Ansible pattern of the hosts allowed; "" for any host.
	Hosts string
	// OwnJobs limits the jobs visible to those submitted under the
	// identity's name.
	OwnJobs bool
}

// Full is the scope of a credential with no limits.
var Full = Scope{AllOps: true, Read: true, Metrics: true}

// Identity is an authenticated caller: the name it acts under and its
// scope.
type Identity struct {
	Name string
	Scope
}

// CanRead reports whether id may list, read and follow jobs and list
// targets and task types.
func (s Scope) CanRead() bool { return s.AllOps || s.Read || len(s.Ops) > 0 }

// CanMetrics reports whether id may read the metrics endpoint.
func (s Scope) CanMetrics() bool { return s.AllOps || s.Metrics }

// CanChange reports whether the scope allows any operation: only such a
// credential may cancel or delete a job (as far as its operation allows).
func (s Scope) CanChange() bool { return s.AllOps || len(s.Ops) > 0 }

// AllowRequest returns why the scope does not allow req's operation (its
// role, its task type), or "" when it does. Hosts are checked apart, since
// matching a pattern needs the inventory.
func (s Scope) AllowRequest(req exe.Request) string {
	if s.AllOps {
		return ""
	}
	if !s.Ops[req.Operate] {
		return fmt.Sprintf("operation %q is not allowed", opWord(req.Operate))
	}
	switch req.Operate {
	case exe.OpDeploy:
		if s.Roles != nil && !globsMatch(s.Roles, req.Deploy.Role) {
			return fmt.Sprintf("deploy of role %q is not allowed", req.Deploy.Role)
		}
	case exe.OpTask:
		if s.TaskTypes != nil && !globsMatch(s.TaskTypes, req.Task.Type) {
			return fmt.Sprintf("task type %q is not allowed", req.Task.Type)
		}
	}
	return ""
}

// opWord is the ops= word of an operation: "tasks" for the task operation,
// as its endpoint is named.
func opWord(op exe.Operate) string {
	if op == exe.OpTask {
		return "tasks"
	}
	return string(op)
}

func globsMatch(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// credential is one line of the file.
type credential struct {
	sum  [sha256.Size]byte // of the token; zero for a cert: line
	cert string            // the certificate name of a cert: line
	id   *Identity
}

// File is a parsed credentials file. It is never changed once parsed, so
// it is safe for concurrent use.
type File struct {
	tokens []credential
	certs  map[string]*Identity
}

// Tokens is the number of token lines (plain and hashed).
func (f *File) Tokens() int { return len(f.tokens) }

// Certs is the number of cert: lines.
func (f *File) Certs() int { return len(f.certs) }

// Token returns the identity of a presented bearer token. Every line's sum
// is compared, always all of them, in constant time.
func (f *File) Token(token string) (*Identity, bool) {
	sum := sha256.Sum256([]byte(token))
	found, idx := 0, 0
	for i := range f.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], f.tokens[i].sum[:])
		idx = subtle.ConstantTimeSelect(eq&^found, i, idx)
		found |= eq
	}
	if found == 0 {
		return nil, false
	}
	return f.tokens[idx].id, true
}

// Cert returns the identity of the cert: line that names one of names (a
// verified client certificate's Common Name and Subject Alternative
// Names). A certificate whose names match more than one cert: line is
// refused (false), as CertIdentity says.
func (f *File) Cert(names []string) (*Identity, bool) {
	id, err := f.CertIdentity(names)
	return id, err == nil
}

// CertIdentity is Cert with the reason for a refusal: no cert: line names
// the certificate, or several do. A certificate with CN "alice" and the
// SAN "mallory" must not pass for whichever of cert:alice and
// cert:mallory is checked first: it is refused, and the message names the
// lines (never a token).
func (f *File) CertIdentity(names []string) (*Identity, error) {
	var found *Identity
	var lines []string
	for _, n := range names {
		id, ok := f.certs[n]
		if !ok || id == found {
			continue
		}
		lines = append(lines, "cert:"+n)
		if found == nil {
			found = id
		}
	}
	switch {
	case found == nil:
		return nil, errors.New("client certificate is not in the credentials file")
	case len(lines) > 1:
		return nil, fmt.Errorf("client certificate matches more than one line of the credentials file (%s): refused", strings.Join(lines, ", "))
	}
	return found, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// Parse reads a credentials file's text; src names it in errors and
// warnings. Warnings (never a token) name lines whose plain token is
// shorter than MinTokenLength. An error names the line and what is wrong
// with it; a file with no credential is an error.
func Parse(text []byte, src string) (*File, []string, error) {
	if !utf8.Valid(text) {
		return nil, nil, fmt.Errorf("%s: not valid UTF-8", src)
	}
	f := &File{certs: map[string]*Identity{}}
	var warnings []string
	// A byte order mark (a file saved by some Windows editors) is no part
	// of the first token.
	text = bytes.TrimPrefix(text, []byte("\ufeff"))
	for i, line := range strings.Split(string(text), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		cred, err := parseCredential(fields[0])
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: %v", src, n, err)
		}
		id := &Identity{Name: fmt.Sprintf("token#%d", n), Scope: Full}
		if cred.cert != "" {
			id.Name = cred.cert
		}
		named, err := parseScopes(fields[1:], id)
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: %v", src, n, err)
		}
		if cred.cert == "" && !named && id.OwnJobs {
			return nil, nil, fmt.Errorf("%s line %d: jobs=own needs name=: without one the token is %s, a name that follows its line and would go to another token when lines above it are added or removed",
				src, n, id.Name)
		}
		cred.id = id
		if cred.cert != "" {
			if _, dup := f.certs[cred.cert]; dup {
				return nil, nil, fmt.Errorf("%s line %d: cert:%s is given twice", src, n, cred.cert)
			}
			f.certs[cred.cert] = id
			continue
		}
		if cred.plainLen > 0 && cred.plainLen < MinTokenLength {
			warnings = append(warnings, fmt.Sprintf("%s line %d: a token of %d characters is easy to guess; use at least %d random ones (e.g. openssl rand -hex 32)",
				src, n, cred.plainLen, MinTokenLength))
		}
		for _, c := range f.tokens {
			if c.sum == cred.sum {
				return nil, nil, fmt.Errorf("%s line %d: the same token is on an earlier line", src, n)
			}
		}
		f.tokens = append(f.tokens, cred.credential)
	}
	if len(f.tokens) == 0 && len(f.certs) == 0 {
		return nil, nil, fmt.Errorf("%s holds no token", src)
	}
	return f, warnings, nil
}

type parsedCredential struct {
	credential
	plainLen int
}

func parseCredential(field string) (parsedCredential, error) {
	var c parsedCredential
	switch {
	case strings.HasPrefix(field, "sha256:"):
		b, err := hex.DecodeString(strings.TrimPrefix(field, "sha256:"))
		if err != nil || len(b) != sha256.Size {
			return c, errors.New("sha256: must be followed by the 64 hex digits of the token's SHA-256 (printf %s TOKEN | sha256sum)")
		}
		copy(c.sum[:], b)
	case strings.HasPrefix(field, "cert:"):
		name := strings.TrimPrefix(field, "cert:")
		if name == "" {
			return c, errors.New("cert: must be followed by the certificate's Common Name or Subject Alternative Name")
		}
		c.cert = name
	default:
		c.sum = sha256.Sum256([]byte(field))
		c.plainLen = utf8.RuneCountInString(field)
	}
	return c, nil
}

// parseScopes applies key=value fields to id, which starts with Full, and
// reports whether they gave it a name.
func parseScopes(fields []string, id *Identity) (named bool, err error) {
	seen := map[string]bool{}
	for _, f := range fields {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return false, fmt.Errorf("%q is not key=value (keys: name, ops, hosts, jobs; a token holds no spaces)", clip(f))
		}
		if seen[key] {
			return false, fmt.Errorf("%s is given twice", key)
		}
		seen[key] = true
		switch key {
		case "name":
			if !nameRE.MatchString(value) {
				return false, fmt.Errorf("name %q: use 1-64 of A-Z a-z 0-9 . _ @ -", clip(value))
			}
			id.Name, named = value, true
		case "ops":
			s, err := parseOps(value)
			if err != nil {
				return false, err
			}
			s.Hosts, s.OwnJobs = id.Hosts, id.OwnJobs
			id.Scope = s
		case "hosts":
			if value == "" {
				return false, errors.New("hosts: an Ansible host pattern is required (leave hosts out for every host)")
			}
			if _, err := inventory.Default().Match(value); err != nil {
				return false, fmt.Errorf("hosts: %v", exe.PublicMessage(err))
			}
			id.Hosts = value
		case "jobs":
			switch value {
			case "own":
				id.OwnJobs = true
			case "all":
				id.OwnJobs = false
			default:
				return false, fmt.Errorf("jobs: %q is not own or all", clip(value))
			}
		default:
			return false, fmt.Errorf("unknown key %q (keys: name, ops, hosts, jobs)", clip(key))
		}
	}
	return named, nil
}

var opWords = map[string]exe.Operate{
	"ping": exe.OpPing, "facter": exe.OpFacter, "service": exe.OpService, "execute": exe.OpExecute,
	"deploy": exe.OpDeploy, "tasks": exe.OpTask,
}

func parseOps(value string) (Scope, error) {
	var s Scope
	if value == "" {
		return s, errors.New("ops: list what is allowed (ping, facter, service, execute, deploy[:ROLE-GLOB], tasks[:TYPE-GLOB], read, metrics, all)")
	}
	s.Ops = map[exe.Operate]bool{}
	var anyRole, anyType bool
	for _, w := range strings.Split(value, ",") {
		word, glob, hasGlob := strings.Cut(w, ":")
		if hasGlob {
			if _, err := path.Match(glob, ""); err != nil || glob == "" {
				return s, fmt.Errorf("ops: %q: not a shell glob", clip(w))
			}
		}
		switch {
		case word == "all" && !hasGlob:
			s.AllOps, s.Read, s.Metrics = true, true, true
		case word == "read" && !hasGlob:
			s.Read = true
		case word == "metrics" && !hasGlob:
			s.Metrics = true
		case word == "deploy":
			s.Ops[exe.OpDeploy] = true
			if hasGlob {
				s.Roles = append(s.Roles, glob)
			} else {
				anyRole = true
			}
		case word == "tasks":
			s.Ops[exe.OpTask] = true
			if hasGlob {
				s.TaskTypes = append(s.TaskTypes, glob)
			} else {
				anyType = true
			}
		case opWords[word] != "" && !hasGlob:
			s.Ops[opWords[word]] = true
		default:
			return s, fmt.Errorf("ops: unknown %q (ping, facter, service, execute, deploy[:ROLE-GLOB], tasks[:TYPE-GLOB], read, metrics, all)", clip(w))
		}
	}
	if anyRole {
		s.Roles = nil
	}
	if anyType {
		s.TaskTypes = nil
	}
	return s, nil
}

func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	n := 40
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// LoadFile reads and parses the credentials file at path. A file that
// group or others can write is an error, since whoever can write it can
// let themselves in; a warning says when others can read it.
func LoadFile(path string) (*File, []string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return nil, nil, fmt.Errorf("%s is writable by group or others (mode %04o): anyone who can write it can add a token; chmod go-w %s",
			path, perm, path)
	} else if perm&0o004 != 0 {
		warnings = append(warnings, fmt.Sprintf("%s is readable by others (mode %04o): every local user can read the tokens; chmod o-r %s",
			path, perm, path))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, w, err := Parse(b, path)
	if err != nil {
		return nil, nil, err
	}
	return f, append(warnings, w...), nil
}

// Keeper holds the credentials in force and replaces them on Reload; it
// is safe for concurrent use.
type Keeper struct {
	path string
	cur  atomic.Pointer[File]

	changed notice // signalled by a Reload that loads
}

// NewKeeper loads the file at path (LoadFile).
func NewKeeper(path string) (*Keeper, []string, error) {
	f, warnings, err := LoadFile(path)
	if err != nil {
		return nil, nil, err
	}
	k := &Keeper{path: path}
	k.cur.Store(f)
	return k, warnings, nil
}

// KeeperOf holds fixed credentials; Reload keeps them.
func KeeperOf(f *File) *Keeper {
	k := &Keeper{}
	k.cur.Store(f)
	return k
}

// File returns the credentials in force.
func (k *Keeper) File() *File { return k.cur.Load() }

// Changed returns a channel closed when other credentials come into force
// (a Reload that loads), so that what holds on to a credential check, a
// follow stream say, can check again at once rather than at its next
// use. Take it before reading File: a change after Changed returned
// closes the channel it returned.
func (k *Keeper) Changed() <-chan struct{} { return k.changed.wait() }

// Reload reads the file again. When it does not load, the error says why
// and the credentials in force stay; otherwise the new ones are in force
// for every request that authenticates after Reload returns.
func (k *Keeper) Reload() ([]string, error) {
	if k.path == "" {
		return nil, nil
	}
	f, warnings, err := LoadFile(k.path)
	if err != nil {
		return nil, err
	}
	k.cur.Store(f)
	k.changed.signal()
	return warnings, nil
}

// FromTokens returns a File of tokens with full access, named as the lines
// of a file holding them one per line would be.
func FromTokens(tokens []string) *File {
	f := &File{certs: map[string]*Identity{}}
	for i, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			f.tokens = append(f.tokens, credential{sum: sha256.Sum256([]byte(t)),
				id: &Identity{Name: fmt.Sprintf("token#%d", i+1), Scope: Full}})
		}
	}
	return f
}
