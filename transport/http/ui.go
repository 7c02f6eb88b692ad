package http

import (
	"net/http"

	"github.com/0ops/exed/transport/http/internal/ui"
)

// uiPath is where the job dashboard is served, under the prefix.
const uiPath = "/ui/"

// UIContentSecurityPolicy is the Content-Security-Policy header of every
// file of the job dashboard (Options.UI): scripts, styles and connections
// of the page's own origin only, no inline script or style, Trusted Types
// required, no framing.
const UIContentSecurityPolicy = ui.ContentSecurityPolicy

// registerUI serves the dashboard's files at prefix/ui/ (GET and HEAD;
// prefix/ui redirects there). They need no credentials: they are the
// same for every server and hold nothing of this one; the page asks its
// user for a token and sends it with every API call. Other methods are
// 405 like on the API's paths.
func (a *API) registerUI(mux *http.ServeMux) {
	root := a.opts.Prefix + uiPath
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusNotFound, "no such file of the dashboard: "+r.URL.Path)
	})
	mux.Handle("GET "+root, ui.Handler(root, notFound))
	mux.HandleFunc(root, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		writeMessage(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; allowed: GET, HEAD")
	})
}

// uiNavigation reports whether r is a browser loading the dashboard's
// page itself as a top-level document (a link followed, a bookmark):
// the one request of a cross-site origin the origin guard lets through,
// as SameSite=Lax cookies are. Such a load runs nothing and reads
// nothing: the page is the same static file for every server, it cannot
// be framed (frame-ancestors 'none'), and every call it then makes is
// same-origin and needs the user's token.
func (a *API) uiNavigation(r *http.Request) bool {
	if !a.opts.UI || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	if r.Header.Get("Sec-Fetch-Mode") != "navigate" || r.Header.Get("Sec-Fetch-Dest") != "document" {
		return false
	}
	p := r.URL.Path
	root := a.opts.Prefix + uiPath
	return p == root || p == root+"index.html"
}
