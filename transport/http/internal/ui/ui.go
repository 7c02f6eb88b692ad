// Package ui serves exed's job dashboard: one page for browsers (HTML,
// ES modules and CSS written by hand, embedded in the binary, no build
// step) that lists the jobs, follows a job's hosts live as Server-Sent
// Events, cancels a job and runs ping or execute on a pattern. The page
// is a client of the HTTP API like any other: it holds nothing of the
// server, and calls the API with the bearer token its user enters.
//
// Every answer carries headers that confine the page: a Content Security
// Policy that allows scripts, styles and connections to its own origin
// only (no inline script or style, no eval, Trusted Types required, no
// framing), nosniff, no Referer and a same-origin opener policy.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// ContentSecurityPolicy is the Content-Security-Policy header of every
// answer of Handler (W3C CSP Level 3). The page's scripts and styles are
// files of its own origin; connect-src 'self' lets it call the API it is
// served by and nothing else; frame-ancestors 'none' keeps it out of other
// sites' frames (clickjacking); base-uri and form-action 'none' leave a
// markup injection nothing to redirect; Trusted Types make any write of a
// string to innerHTML and the like throw, so hosts' output can only ever
// be shown as text.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed static
var static embed.FS

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// files are the embedded files by name ("index.html", "app.js", ...).
var files = func() map[string]file {
	out := map[string]file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if path.Ext(p) == ".js" {
			// The platform's MIME table may lack .js or name an old type;
			// module scripts need a JavaScript type (HTML standard).
			ct = "text/javascript; charset=utf-8"
		}
		out[strings.TrimPrefix(p, "static/")] = file{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: embedded files: " + err.Error())
	}
	return out
}()

// Names lists the embedded files' names, such as "index.html".
func Names() []string {
	out := make([]string, 0, len(files))
	for n := range files {
		out = append(out, n)
	}
	return out
}

// File returns an embedded file's bytes (nil, false if there is none).
func File(name string) ([]byte, bool) {
	f, ok := files[name]
	return f.body, ok
}

// Handler serves the dashboard's files under root (a path ending in "/",
// such as "/ui/" or "/exed/ui/"): root itself is index.html. A GET or
// HEAD for a name that is not one of them is passed to notFound; the
// caller routes other methods elsewhere. Files are revalidated on every
// load (an ETag of their content), so a new binary's page is never mixed
// with an old one's modules.
func Handler(root string, notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, root)
		if name == "" {
			name = "index.html"
		}
		f, found := files[name]
		if !ok || !found {
			notFound.ServeHTTP(w, r)
			return
		}
		SetHeaders(w.Header())
		w.Header().Set("Content-Type", f.contentType)
		w.Header().Set("ETag", f.etag)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}

// SetHeaders sets the headers that confine the page on h: the Content
// Security Policy and its companions.
func SetHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY") // frame-ancestors for browsers without CSP 2
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
