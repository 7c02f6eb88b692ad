package http

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
)

// authenticator finds who makes a request: the bearer token's line of the
// credentials in force, or a verified client certificate's. Tokens are
// never logged.
type authenticator struct {
	creds *auth.Keeper // nil: no token file
	// certs: a verified client certificate authenticates; with no
	// credentials file, every certificate the client CA signed has full
	// access under its Common Name.
	certs bool
	// cas, when not nil, must still sign the connection's certificate
	// (a reload may have rotated a CA out since the handshake).
	cas *auth.ClientCAs
}

func newAuthenticator(opts Options) *authenticator {
	a := &authenticator{creds: opts.Credentials, certs: opts.ClientCerts, cas: opts.ClientCAs}
	if a.creds == nil && len(opts.Tokens) > 0 {
		a.creds = auth.KeeperOf(auth.FromTokens(opts.Tokens))
	}
	return a
}

// required reports whether requests must authenticate.
func (a *authenticator) required() bool { return a.creds != nil || a.certs }

// anonymous is the identity of every request when the API has no
// credentials: full access, no name.
var anonymous = &auth.Identity{Scope: auth.Full}

// reloads reports whether what identify answers can change while a
// request is served (a follow stream): a reload of the credentials or of
// the client CAs.
func (a *authenticator) reloads() bool { return a.creds != nil || a.cas != nil }

// authState is what identify's answer for a request depends on that a
// reload changes.
type authState struct {
	file  *auth.File // nil without credentials
	caGen uint64     // 0 without client CAs
}

func (a *authenticator) state() authState {
	var st authState
	if a.creds != nil {
		st.file = a.creds.File()
	}
	if a.cas != nil {
		st.caGen = a.cas.Generation()
	}
	return st
}

// changed returns channels closed when the credentials or the client CAs
// change (nil, which never fires, for those the API has not); take them
// before calling identify, as Keeper.Changed says.
func (a *authenticator) changed() (creds, cas <-chan struct{}) {
	if a.creds != nil {
		creds = a.creds.Changed()
	}
	if a.cas != nil {
		cas = a.cas.Changed()
	}
	return creds, cas
}

// identify returns the caller's identity, or "" and why it is refused. A
// bearer token, when sent, must be valid even if a client certificate is
// also presented. A connection whose certificate the client CAs in force
// no longer sign is refused whatever it shows: a new connection with
// that certificate would fail its handshake.
func (a *authenticator) identify(r *http.Request) (*auth.Identity, string) {
	if a.cas != nil {
		if err := a.cas.Verify(r.TLS); err != nil {
			return nil, err.Error()
		}
	}
	if !a.required() {
		return anonymous, ""
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || a.creds == nil {
			return nil, "missing or invalid bearer token"
		}
		if id, ok := a.creds.File().Token(strings.TrimSpace(token)); ok {
			return id, ""
		}
		return nil, "missing or invalid bearer token"
	}
	if a.certs && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		if a.creds == nil {
			return &auth.Identity{Name: certName(leaf), Scope: auth.Full}, ""
		}
		id, err := a.creds.File().CertIdentity(certNames(leaf))
		if err != nil {
			return nil, err.Error()
		}
		return id, ""
	}
	return nil, "missing or invalid bearer token"
}

// certNames are the names a certificate may be known by in the
// credentials file: its Common Name, then its DNS and e-mail Subject
// Alternative Names.
func certNames(c *x509.Certificate) []string {
	var names []string
	if c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	names = append(names, c.DNSNames...)
	return append(names, c.EmailAddresses...)
}

func certName(c *x509.Certificate) string {
	if n := certNames(c); len(n) > 0 {
		return n[0]
	}
	return c.SerialNumber.String()
}

type identityKey struct{}
type requestIDKey struct{}

// requestContext is the context of a request authorize let through: its
// ID and who makes it in one value, where context.WithValue would add
// one layer (and an allocation) each.
type requestContext struct {
	context.Context // with exe.WithUser's name
	id              string
	identity        *auth.Identity // nil: not authenticated (a 401)
}

func (c *requestContext) Value(key any) any {
	switch key.(type) {
	case requestIDKey:
		return c.id
	case identityKey:
		if c.identity == nil {
			return nil
		}
		return c.identity
	}
	return c.Context.Value(key)
}

// identityOf is the identity the API authenticated for r.
func identityOf(r *http.Request) *auth.Identity {
	if id, ok := r.Context().Value(identityKey{}).(*auth.Identity); ok {
		return id
	}
	return anonymous
}

// requestID is the ID the API gave r (X-Request-Id of its answer).
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	var h [16]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// withRequestID gives every request an ID of the server's, answered in
// X-Request-Id and written in the audit trail. One a client sends is not
// taken: the trail's IDs are the server's own. authorize puts it in the
// request's context (the trail, its only reader, is behind authorize),
// so that a request is copied (Request.WithContext) once, not twice.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()[requestIDHeader] = []string{newRequestID()}
		next.ServeHTTP(w, r)
	})
}

// requestIDHeader is X-Request-Id, as http.CanonicalHeaderKey writes it.
const requestIDHeader = "X-Request-Id"

// authorize authenticates every request and checks the permission the
// endpoint needs; the identity then travels in the request's context
// (and its name as exe.UserFrom, which Submit records as the job's user),
// with the request's ID (withRequestID).
func (a *API) authorize(rt route, next http.Handler) http.Handler {
	need := permissionOf(rt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, why := a.authn.identify(r)
		rc := &requestContext{Context: r.Context(), identity: id}
		if ids := w.Header()[requestIDHeader]; len(ids) > 0 {
			rc.id = ids[0]
		}
		if id == nil {
			r = r.WithContext(rc)
			a.audit.deny(r, nil, http.StatusUnauthorized, why)
			w.Header().Set("WWW-Authenticate", `Bearer realm="exed"`)
			writeMessage(w, http.StatusUnauthorized, why)
			return
		}
		rc.Context = exe.WithUser(rc.Context, id.Name)
		r = r.WithContext(rc)
		if msg := need.check(id); msg != "" {
			a.forbid(w, r, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}
