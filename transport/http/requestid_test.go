package http_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditRecords are the records of an audit trail written to l.
func auditRecords(t *testing.T, l *lockedBuffer) []exehttp.AuditRecord {
	var out []exehttp.AuditRecord
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var rec exehttp.AuditRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
		out = append(out, rec)
	}
	return out
}

// Every answer carries an X-Request-Id of the server's (not the one a
// client sends), and the audit record of the request has the same ID:
// an accepted submit, a refused one, a request without credentials.
func TestRequestIDInAuditTrail(t *testing.T) {
	trail := &lockedBuffer{}
	s := newServer(t, serverOpts{api: exehttp.Options{Tokens: []string{"secret-token-0123456789"}, Audit: exehttp.NewAudit(trail, nil)}})
	hexID := regexp.MustCompile(`^[0-9a-f]{16}$`)

	submit := s.post("/ping", `{"targets":["localhost"]}`)
	require.Equal(t, http.StatusCreated, submit.status, string(submit.body))
	refused := s.post("/ping", `{"targets":["no-such-host.invalid"]}`)
	require.NotEqual(t, http.StatusCreated, refused.status, string(refused.body))
	s.token = ""
	req, err := http.NewRequest("GET", s.URL+"/jobs", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-Id", "from-the-client")
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	health := s.get("/healthz")

	ids := map[string]string{}
	for action, h := range map[string]http.Header{"submit": submit.header, "refused": refused.header, "deny": res.Header, "healthz": health.header} {
		id := h.Get("X-Request-Id")
		assert.Regexp(t, hexID, id, action)
		assert.Len(t, h.Values("X-Request-Id"), 1, action)
		ids[action] = id
	}
	assert.Len(t, map[string]bool{ids["submit"]: true, ids["refused"]: true, ids["deny"]: true, ids["healthz"]: true}, 4, "an ID per request")

	got := map[string]string{}
	for _, rec := range auditRecords(t, trail) {
		switch {
		case rec.Action == "submit" && rec.Outcome == "accepted":
			got["submit"] = rec.RequestID
		case rec.Action == "submit" && rec.Outcome == "refused":
			got["refused"] = rec.RequestID
		case rec.Action == "deny":
			got["deny"] = rec.RequestID
		}
	}
	delete(ids, "healthz") // not audited
	assert.Equal(t, ids, got)
}
