package http

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the OpenAPI 3 document of the API. It is the one source:
// docs/openapi.json is a copy that a test keeps byte-equal, and the
// transport's tests check every exchange against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.0 document (JSON) of the API, the one GET
// /openapi.json serves: every path, parameter, body, response and error.
// Its server URL is "." (relative to where the document is served), so
// that it holds under any Options.Prefix.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

// openAPI serves the document. It needs no credentials, like /healthz: it
// is the document of the repository, byte for byte, and says nothing of
// this server (no hosts, jobs, names or version); tools that read it
// (client generators, API browsers) seldom send any.
func (a *API) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
}
