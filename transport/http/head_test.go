package http_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HEAD is a safe method that link checkers and probes send freely, and
// net/http's mux routes it to a GET pattern: on the sync operations it
// would run the operation (and send only the headers of its answer).
// There it is 405 with a truthful Allow, and nothing runs or is audited;
// the GETs that only read still answer HEAD. With and without a prefix,
// and with a valid token.
func TestHeadRunsNothing(t *testing.T) {
	for _, prefix := range []string{"", "/exe"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			trail := &lockedBuffer{}
			s := newServer(t, serverOpts{api: exehttp.Options{Prefix: prefix, Tokens: []string{"secret-0123456789abcdef"},
				Audit: exehttp.NewAudit(trail, nil)}})
			canary := filepath.Join(t.TempDir(), "canary")
			touch := "/execute?target=localhost&cmd=" + url.QueryEscape("touch "+canary)
			for _, path := range []string{
				"/ping?target=localhost",
				"/facter?target=localhost",
				"/service?target=localhost&name=exe-no-such-service&state=1",
				touch,
			} {
				r := s.do("HEAD", prefix+path, "", "")
				assert.Equal(t, http.StatusMethodNotAllowed, r.status, path)
				assert.Equal(t, "GET, POST", r.header.Get("Allow"), path)
				assert.Equal(t, "application/json", r.header.Get("Content-Type"), path)
				assert.Empty(t, r.body, "%s: a HEAD answer has no body", path)
			}
			assert.NoFileExists(t, canary, "HEAD ran the command")
			assert.Empty(t, auditRecords(t, trail), "HEAD ran an operation")

			r := s.do("PUT", prefix+"/execute", "application/json", "{}")
			assert.Equal(t, http.StatusMethodNotAllowed, r.status)
			assert.Equal(t, "GET, POST", r.header.Get("Allow"), "Allow lists what is allowed")
			assert.Equal(t, "method PUT is not allowed here; allowed: GET, POST", r.message(t))

			r = s.post(prefix+"/ping", `{"targets":["localhost"]}`)
			require.Equal(t, http.StatusCreated, r.status, string(r.body))
			var submitted map[string]string
			r.json(t, &submitted)
			jid := submitted["jid"]
			for _, path := range []string{"/jobs", "/jobs?detail=1", "/jobs/" + jid, "/target", "/tasks", "/healthz", "/openapi.json"} {
				r := s.do("HEAD", prefix+path, "", "")
				assert.Equal(t, http.StatusOK, r.status, "%s: a GET that only reads answers HEAD", path)
			}

			// The same request as a GET runs: the canary would have shown
			// a HEAD that ran.
			r = s.get(prefix + touch)
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.FileExists(t, canary)
		})
	}
}
