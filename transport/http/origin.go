package http

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// originGuard refuses requests that a browser sends on behalf of another
// site, and requests addressed to a name the server does not answer to.
//
// exed's GETs change things (GET /execute runs a command), so the usual rule
// of cross-origin protection (net/http's CrossOriginProtection, OWASP's CSRF
// advice), which exempts GET and HEAD, is not enough: an <img src> in any
// page would run a command on a server that listens on loopback without
// tokens. The guard therefore checks every method:
//
//   - Host: the request's host name must be one of the server's names.
//     DNS rebinding points an attacker's name at 127.0.0.1, so the browser
//     treats the server as the attacker's origin and can read its answers;
//     the Host header still carries the attacker's name, which no server
//     name matches. By default the names are "localhost" and IP literals,
//     which no rebinding can forge.
//   - Sec-Fetch-Site: browsers mark every request with where it comes from;
//     only "same-origin" and "none" (typed in the address bar, a bookmark)
//     pass.
//   - Origin, then Referer, for browsers without Fetch metadata: when sent,
//     its host and port must be the request's own.
//
// Clients that are not browsers (curl, the seed's clients, SDKs) send none
// of these headers and are not affected. No CORS header is ever sent, so a
// browser's preflight never succeeds either.
type originGuard struct {
	any   bool            // "*": any Host
	names map[string]bool // lower-case host names, without port or brackets
}

func newOriginGuard(names []string) *originGuard {
	g := &originGuard{names: map[string]bool{"localhost": true}}
	for _, n := range names {
		n = normalizeHost(n)
		if n == "*" {
			g.any = true
		}
		if n != "" {
			g.names[n] = true
		}
	}
	return g
}

// normalizeHost lower-cases a host name and drops its port, IPv6 brackets
// and a trailing dot, so that "LOCALHOST.:16808" and "localhost" compare
// equal.
func normalizeHost(h string) string {
	h = strings.TrimSpace(strings.ToLower(h))
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(h, ".")
}

// allowedHost reports whether host (a Host header) names this server.
func (g *originGuard) allowedHost(host string) bool {
	if g.any {
		return true
	}
	h := normalizeHost(host)
	if h == "" {
		// Only HTTP/1.0 clients omit Host; browsers always send it.
		return true
	}
	if g.names[h] {
		return true
	}
	// An IP literal is not a name anyone else can point at this server.
	if i := strings.IndexByte(h, '%'); i >= 0 { // fe80::1%eth0
		h = h[:i]
	}
	return net.ParseIP(h) != nil
}

// check returns why r must be refused, or "" to serve it. A navigation
// (see wrap) passes the Host check only.
func (g *originGuard) check(r *http.Request, navigation func(*http.Request) bool) string {
	if !g.allowedHost(r.Host) {
		return "host " + quote(normalizeHost(r.Host)) + " is not a name of this server (add it to the server's names, [api] server_names)"
	}
	if navigation != nil && navigation(r) {
		return ""
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return "cross-site request refused (Sec-Fetch-Site: " + site + ")"
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !sameHost(origin, r.Host) {
			return "cross-origin request refused (Origin: " + origin + ")"
		}
	} else if ref := r.Header.Get("Referer"); ref != "" && r.Header.Get("Sec-Fetch-Site") == "" {
		if !sameHost(ref, r.Host) {
			return "cross-origin request refused (Referer from another origin)"
		}
	}
	return ""
}

// sameHost reports whether the URL u (an Origin or Referer) is on the
// request's own host and port. "null" (sandboxed frames, file: pages) and
// anything unparsable are not.
func sameHost(u, host string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
		return false
	}
	return strings.EqualFold(withPort(p.Host, p.Scheme), withPort(host, p.Scheme))
}

// withPort adds the scheme's default port to a host that has none.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), port)
}

// wrap refuses what check refuses. navigation, when not nil, says which
// requests are top-level loads of a page that may come from any site (the
// dashboard's page: API.uiNavigation); they still need a Host of the
// server's.
func (g *originGuard) wrap(next http.Handler, navigation func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := g.check(r, navigation); why != "" {
			writeMessage(w, http.StatusForbidden, why)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
