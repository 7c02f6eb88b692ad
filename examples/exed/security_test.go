package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tokens of the security tests: long enough not to be warned about.
const (
	adminToken  = "admin-0123456789abcdef"
	ciToken     = "ci-0123456789abcdef"
	otherToken  = "other-0123456789abcdef"
	readerToken = "reader-0123456789abcdef"
)

// secured is a running exed with a credentials file, an audit trail and
// an inventory of web1, web2 and db1, all on this machine, where every
// way of changing a host leaves a canary file.
type secured struct {
	*proc
	dir, tokens, audit, canaries string
	base                         string
	client                       *http.Client
}

func sha(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }

// startSecured starts exed with the credentials file text; extra is
// added to the [api] section.
func startSecured(t *testing.T, tokens, extraAPI string) *secured {
	t.Helper()
	dir := t.TempDir()
	s := &secured{dir: dir, tokens: filepath.Join(dir, "tokens"), audit: filepath.Join(dir, "audit.log"),
		canaries: filepath.Join(dir, "canaries"), client: http.DefaultClient}
	require.NoError(t, os.Mkdir(s.canaries, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "roles", "web"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "roles", "web", "main.sh"),
		[]byte("#!/bin/sh\ntouch "+s.canaries+"/deploy-$$\n"), 0o755))
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n[db]\ndb1 ansible_connection=local\n"), 0o600))
	require.NoError(t, os.WriteFile(s.tokens, []byte(tokens), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
auth_token_file = %s
%s
[log]
audit_log = %s
[runner]
shutdown_grace = 2s
[sshnative]
inventory = %s
roles = %s
`, freePort(t), s.tokens, extraAPI, s.audit, inv, filepath.Join(dir, "roles")))
	s.proc = start(t, dir, "-c", conf)
	s.base = "http://" + s.addr
	return s
}

// call sends a request with a bearer token ("" for none).
func (s *secured) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b
}

func (s *secured) submit(t *testing.T, path, token, body string) string {
	t.Helper()
	code, b := s.call(t, "POST", path, token, body)
	require.Equal(t, http.StatusCreated, code, string(b))
	var out map[string]string
	require.NoError(t, json.Unmarshal(b, &out))
	return out["jid"]
}

// finished waits (bounded) for a job to end and returns it.
func (s *secured) finished(t *testing.T, jid, token string) map[string]any {
	t.Helper()
	code, b := s.call(t, "GET", "/jobs/"+jid+"?follow=1", token, "")
	require.Equal(t, http.StatusOK, code, string(b))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var job map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &job))
	return job
}

func (s *secured) canaryFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(s.canaries)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// auditLines reads the audit trail.
func (s *secured) auditLines(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(s.audit)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

// denials gives the messages of the audit trail's deny lines of user.
func (s *secured) denials(t *testing.T, user string) []string {
	t.Helper()
	var out []string
	for _, l := range s.auditLines(t) {
		if l["action"] == "deny" && l["user"] == user {
			out = append(out, fmt.Sprint(l["message"]))
		}
	}
	return out
}

// followRunning opens the follow stream of job jid through client, with a
// bearer token ("" for none), and reads its first line, the job running.
// The stream is bounded by a minute, so that one the server leaves open
// fails the test's reads instead of hanging them; the test's cleanup
// closes it.
func (s *secured) followRunning(t *testing.T, client *http.Client, token, jid string) *bufio.Reader {
	t.Helper()
	bounded, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(bounded, "GET", s.base+"/jobs/"+jid+"?follow=1", nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)
	stream := bufio.NewReader(res.Body)
	first, err := stream.ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, first, `"state":1`, "the job, running")
	return stream
}

// getOn sends GET url through client and tells whether it went on a
// connection already open: a reload's check of credentials must reach
// connections whose handshake came before it.
func getOn(t *testing.T, client *http.Client, url string) (code int, body string, reused bool) {
	t.Helper()
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
	require.NoError(t, err)
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b), reused
}

const scopedTokens = "# operators\n" +
	adminToken + " name=admin\n" +
	ciToken + " name=ci ops=execute hosts=web* jobs=own\n" +
	"sha256:%s name=other ops=execute jobs=own\n" +
	readerToken + " name=reader ops=read\n"

// A token limited to execute on web* is refused, with nothing run,
// deploy and any db host: sync and async, by name or in a list with an
// allowed host. /target shows it only its hosts.
func TestScopedTokenRunsNothingOutsideItsScope(t *testing.T) {
	s := startSecured(t, fmt.Sprintf(scopedTokens, sha(otherToken)), "")
	touch := "touch " + s.canaries + "/execute-$$"
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/deploy", `{"targets":["web1"],"role":"web"}`, `not allowed: operation "deploy" is not allowed`},
		{"POST", "/execute", `{"targets":["db1"],"cmd":"` + touch + `"}`, "not allowed: targets outside the hosts this credential may use: db1"},
		{"POST", "/execute", `{"targets":["web1","db1"],"cmd":"` + touch + `"}`, "not allowed: targets outside the hosts this credential may use: db1"},
		{"GET", "/execute?target=db1&cmd=" + strings.ReplaceAll(touch, " ", "%20"), "", "not allowed: targets outside the hosts this credential may use: db1"},
		{"GET", "/ping?target=web1", "", `not allowed: operation "ping" is not allowed`},
		{"POST", "/execute", `{"targets":["nosuchhost"],"cmd":"` + touch + `"}`, "not allowed: targets outside the hosts this credential may use: nosuchhost"},
	} {
		code, b := s.call(t, tc.method, tc.path, ciToken, tc.body)
		assert.Equal(t, http.StatusForbidden, code, "%s %s: %s", tc.method, tc.path, b)
		assert.JSONEq(t, fmt.Sprintf(`{"message":%q}`, tc.want), string(b), "%s %s", tc.method, tc.path)
	}
	// The read-only token cannot run anything either.
	code, b := s.call(t, "POST", "/execute", readerToken, `{"targets":["web1"],"cmd":"`+touch+`"}`)
	assert.Equal(t, http.StatusForbidden, code, string(b))

	// What it may do, it does: the canary of an allowed run is there.
	job := s.finished(t, s.submit(t, "/execute", ciToken, `{"targets":["web1"],"cmd":"touch `+s.canaries+`/allowed"}`), ciToken)
	assert.Equal(t, "ci", job["user"])
	assert.Equal(t, []string{"allowed"}, s.canaryFiles(t), "only the allowed command ran")

	code, b = s.call(t, "GET", "/target", ciToken, "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `["web1","web2"]`, string(b), "/target shows only the hosts the token may use")
	code, b = s.call(t, "GET", "/target?pattern=db", ciToken, "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, string(b))
	code, b = s.call(t, "GET", "/target", adminToken, "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `["db1","web1","web2"]`, string(b))
}

// A token limited to its own jobs gets, for another token's job, exactly
// the answer for a job that does not exist, on every job endpoint; the
// listing leaves it out.
func TestOwnJobsOnlyIsNotFoundForOthers(t *testing.T) {
	s := startSecured(t, fmt.Sprintf(scopedTokens, sha(otherToken)), "")
	running := s.submit(t, "/execute", otherToken, `{"targets":["web1"],"cmd":"sleep 30"}`)
	t.Cleanup(func() { s.call(t, "POST", "/jobs/"+running+"/cancel", otherToken, "") })
	finished := s.submit(t, "/execute", otherToken, `{"targets":["web1"],"cmd":"true"}`)
	s.finished(t, finished, otherToken)
	mine := s.submit(t, "/execute", ciToken, `{"targets":["web1"],"cmd":"true"}`)
	s.finished(t, mine, ciToken)

	_, missing := s.call(t, "GET", "/jobs/00000000-0000-4000-8000-000000000000", adminToken, "")
	for _, jid := range []string{running, finished} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/jobs/" + jid},
			{"GET", "/jobs/" + jid + "?outputs=1"},
			{"GET", "/jobs/" + jid + "?follow=1"},
			{"POST", "/jobs/" + jid + "/cancel"},
			{"DELETE", "/jobs/" + jid},
		} {
			code, b := s.call(t, req.method, req.path, ciToken, "")
			assert.Equal(t, http.StatusNotFound, code, "%s %s: %s", req.method, req.path, b)
			assert.Equal(t, string(missing), string(b), "%s %s: the answer for a job that does not exist", req.method, req.path)
		}
	}
	code, b := s.call(t, "GET", "/jobs", ciToken, "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, fmt.Sprintf(`[%q]`, mine), string(b))
	code, b = s.call(t, "GET", "/jobs?detail=1", ciToken, "")
	require.Equal(t, http.StatusOK, code)
	var detail []map[string]any
	require.NoError(t, json.Unmarshal(b, &detail))
	require.Len(t, detail, 1)
	assert.Equal(t, mine, detail[0]["jid"])

	// The owner, and a token that sees every job, still reach them.
	code, b = s.call(t, "GET", "/jobs/"+running, adminToken, "")
	require.Equal(t, http.StatusOK, code, string(b))
	var job map[string]any
	require.NoError(t, json.Unmarshal(b, &job))
	assert.Equal(t, "other", job["user"], "the hashed token's name")
	code, _ = s.call(t, "GET", "/jobs/"+running+"?follow=0", otherToken, "")
	assert.Equal(t, http.StatusOK, code)
	code, b = s.call(t, "DELETE", "/jobs/"+finished, otherToken, "")
	assert.Equal(t, http.StatusNoContent, code, string(b))
	code, b = s.call(t, "POST", "/jobs/"+running+"/cancel", otherToken, "")
	assert.Equal(t, http.StatusAccepted, code, string(b))
}

// SIGHUP re-reads the credentials file: a revoked token is 401 as soon as
// the reload is logged; a file that does not load leaves the credentials
// in force. The server keeps running, a job running across it included.
func TestSIGHUPReloadsCredentials(t *testing.T) {
	s := startSecured(t, fmt.Sprintf(scopedTokens, sha(otherToken)), "")
	running := s.submit(t, "/execute", adminToken, `{"targets":["web1"],"cmd":"sleep 1; echo survived"}`)

	require.NoError(t, os.WriteFile(s.tokens, []byte(adminToken+" name=admin\n"+ciToken+" name=ci ops=nonsense\n"), 0o600))
	s.sighup(t, "not reloaded")
	assert.Contains(t, s.logs.String(), `line 2: ops: unknown \"nonsense\"`)
	code, b := s.call(t, "GET", "/jobs", readerToken, "")
	assert.Equal(t, http.StatusOK, code, "a broken file keeps the old tokens: %s", b)

	require.NoError(t, os.WriteFile(s.tokens, []byte(adminToken+" name=admin\n"), 0o600))
	s.sighup(t, "credentials reloaded")
	for _, token := range []string{ciToken, readerToken, otherToken} {
		code, b = s.call(t, "GET", "/jobs", token, "")
		assert.Equal(t, http.StatusUnauthorized, code, "a revoked token: %s", b)
	}
	job := s.finished(t, running, adminToken)
	assert.Equal(t, float64(0), job["state"], "the job running across SIGHUP ends Done: %v", job)
	assert.NotContains(t, s.logs.String(), adminToken, "tokens are never logged")
	assert.NotContains(t, s.logs.String(), ciToken)
	s.stop(t)
}

// The audit trail has one line per submitted job, denied request, cancel,
// delete and job end, each with the identity the server authenticated
// whatever the request claims, and no extra_vars or task option value.
func TestAuditTrail(t *testing.T) {
	s := startSecured(t, fmt.Sprintf(scopedTokens, sha(otherToken)), "")
	jid := s.submit(t, "/deploy", adminToken, `{"targets":["web1"],"role":"web","extra_vars":{"db_password":"hunter2-secret"},"user":"mallory"}`)
	job := s.finished(t, jid, adminToken)
	assert.Equal(t, "admin", job["user"], "a body field cannot set the user")
	code, _ := s.call(t, "DELETE", "/jobs/"+jid, adminToken, "")
	require.Equal(t, http.StatusNoContent, code)
	code, _ = s.call(t, "POST", "/deploy", ciToken, `{"targets":["web1"],"role":"web"}`)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = s.call(t, "GET", "/jobs", "wrong-0123456789abcdef", "")
	require.Equal(t, http.StatusUnauthorized, code)
	running := s.submit(t, "/execute", otherToken, `{"targets":["web2"],"cmd":"touch `+s.canaries+`/started; sleep 30"}`)
	// Cancelled once its command runs: a cancel in the first
	// milliseconds of a job can wait for its command to end.
	require.Eventually(t, func() bool { return len(s.canaryFiles(t)) > 0 }, 10*time.Second, 10*time.Millisecond)
	code, _ = s.call(t, "POST", "/jobs/"+running+"/cancel", otherToken, "")
	require.Equal(t, http.StatusAccepted, code)

	// Eight lines: the six of the requests, written before their
	// answers, and the two "end" lines, which the server writes once it
	// sees each job end, after the answers that ended them (the cancel's
	// included): wait for all of them, not for the first end.
	var lines []map[string]any
	require.Eventually(t, func() bool { lines = s.auditLines(t); return len(lines) >= 8 }, 10*time.Second, 10*time.Millisecond,
		"the audit trail has a line per request and per job end")
	type key struct{ action, user, jid, outcome string }
	var got []key
	for _, l := range lines {
		jid, _ := l["jid"].(string)
		got = append(got, key{l["action"].(string), l["user"].(string), jid, l["outcome"].(string)})
		assert.NotEmpty(t, l["remote_addr"])
		assert.NotEmpty(t, l["time"])
	}
	assert.ElementsMatch(t, []key{
		{"submit", "admin", jid, "accepted"},
		{"end", "admin", jid, "done"},
		{"delete", "admin", jid, "accepted"},
		{"deny", "ci", "", "denied"},
		{"deny", "", "", "denied"},
		{"submit", "other", running, "accepted"},
		{"cancel", "other", running, "accepted"},
		{"end", "other", running, "failure"},
	}, got)
	trail, err := os.ReadFile(s.audit)
	require.NoError(t, err)
	assert.Contains(t, string(trail), `"option_names":["db_password"]`)
	assert.Contains(t, string(trail), `"role":"web"`)
	assert.NotContains(t, string(trail), "hunter2-secret", "extra_vars values are never written")
	assert.NotContains(t, string(trail), "mallory")
	for _, token := range []string{adminToken, ciToken, otherToken, "wrong-0123456789abcdef"} {
		assert.NotContains(t, string(trail), token, "tokens are never written")
	}
	for _, l := range lines {
		if l["action"] == "deny" && l["status"] == float64(403) {
			assert.Equal(t, "deploy", l["operation"])
			assert.Equal(t, `operation "deploy" is not allowed`, l["message"])
		}
	}
}

// writeServerCert writes a new certificate of ca for 127.0.0.1, and its
// key, to certPath and keyPath, and returns its serial number, which
// tells it from the one it renews.
func writeServerCert(t *testing.T, ca *testpki.CA, certPath, keyPath string) int64 {
	t.Helper()
	cert := ca.Server(t)
	testpki.WriteFiles(t, cert, certPath, keyPath)
	return cert.Leaf.SerialNumber.Int64()
}

// servedSerial is the serial number of the certificate a new TLS
// connection to addr gets.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// startTLS starts exed over TLS with the credentials tokens, a server
// certificate (dir/server.pem and dir/server.key) and a client CA
// (dir/ca.pem) from a new CA, and returns it (base URL https), the CA
// and the roots that trust its server.
func startTLS(t *testing.T, dir, tokens string) (*secured, *testpki.CA, *x509.CertPool) {
	t.Helper()
	ca := testpki.NewCA(t, "exed test CA")
	certPath, keyPath, caPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem")
	writeServerCert(t, ca, certPath, keyPath)
	require.NoError(t, os.WriteFile(caPath, ca.PEM(), 0o600))
	s := startSecured(t, tokens, fmt.Sprintf("tls_cert = %s\ntls_key = %s\ntls_client_ca = %s\n", certPath, keyPath, caPath))
	s.base = "https://" + s.addr
	return s, ca, testpki.Pool(ca)
}

// Over TLS, a renewed certificate is served after SIGHUP, a broken one
// leaves the one in force, and a client certificate the client CA signed
// authenticates under its name as mapped in the credentials file.
func TestTLSReloadAndClientCertificates(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	s, ca, roots := startTLS(t, dir, adminToken+" name=admin\ncert:alice ops=execute hosts=web1 jobs=own\n")
	s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	first, err := tls.LoadX509KeyPair(certPath, keyPath) // what startTLS wrote
	require.NoError(t, err)
	assert.Equal(t, first.Leaf.SerialNumber.Int64(), servedSerial(t, s.addr, roots))
	code, b := s.call(t, "GET", "/jobs", adminToken, "")
	assert.Equal(t, http.StatusOK, code, string(b))
	code, _ = s.call(t, "GET", "/jobs", "", "")
	assert.Equal(t, http.StatusUnauthorized, code, "no token, no certificate")

	// Renewed: new handshakes get the new certificate.
	renewed := writeServerCert(t, ca, certPath, keyPath)
	s.sighup(t, "TLS certificate reloaded")
	assert.Equal(t, renewed, servedSerial(t, s.addr, roots))
	// Broken: the renewed one stays.
	require.NoError(t, os.WriteFile(certPath, []byte("not a certificate"), 0o600))
	s.sighup(t, "TLS files not reloaded")
	assert.Equal(t, renewed, servedSerial(t, s.addr, roots))

	// alice's certificate: her scope and her name; bob's, signed by the
	// same CA but not in the file, is refused.
	for _, tc := range []struct {
		cn   string
		want int
	}{{"alice", http.StatusCreated}, {"bob", http.StatusUnauthorized}} {
		pair := ca.Client(t, tc.cn)
		s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
		code, b = s.call(t, "POST", "/execute", "", `{"targets":["web1"],"cmd":"true"}`)
		require.Equal(t, tc.want, code, "%s: %s", tc.cn, b)
		if tc.cn == "alice" {
			var created map[string]string
			require.NoError(t, json.Unmarshal(b, &created))
			assert.Equal(t, "alice", s.finished(t, created["jid"], "")["user"])
			code, b = s.call(t, "POST", "/execute", "", `{"targets":["web2"],"cmd":"true"}`)
			assert.Equal(t, http.StatusForbidden, code, string(b))
		}
	}
}

// A follow stream opened with a token that a reload then revokes gets no
// later host event and no final job: it ends with the last line API.md
// gives a stream that ends before its job, the job as the stream knew it
// (Running) with a message that says the credentials were revoked. The
// streams of credentials still in force go on.
func TestRevokedTokenEndsItsFollowStreams(t *testing.T) {
	s := startSecured(t, fmt.Sprintf(scopedTokens, sha(otherToken)), "")
	release := filepath.Join(s.dir, "release")
	jid := s.submit(t, "/execute", adminToken, `{"targets":["web1"],"cmd":"while [ ! -e `+release+` ]; do sleep 0.05; done; echo after-revocation"}`)
	revoked := s.followRunning(t, s.client, readerToken, jid)
	kept := s.followRunning(t, s.client, adminToken, jid)

	require.NoError(t, os.WriteFile(s.tokens, []byte(adminToken+" name=admin\n"), 0o600))
	s.sighup(t, "credentials reloaded")
	require.NoError(t, os.WriteFile(release, nil, 0o600))

	rest, err := io.ReadAll(kept)
	require.NoError(t, err)
	assert.Contains(t, string(rest), "after-revocation", "a token still in force follows to the end")
	rest, err = io.ReadAll(revoked)
	require.NoError(t, err)
	revokedLastLine(t, rest, jid)
	want := []string{"follow of job " + jid + " ended: the credentials reloaded no longer allow it"}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, s.denials(t, "reader")) }, 10*time.Second, 10*time.Millisecond,
		"the trail says why the stream ended: %v", s.denials(t, "reader"))
}

// revokedLastLine checks that rest, what a follow stream sent once a
// reload revoked its credential, is one line: the job jid as the stream
// first sent it (Running), with the message of a revoked credential.
func revokedLastLine(t *testing.T, rest []byte, jid string) {
	t.Helper()
	endedLastLine(t, rest, jid, "stream ended: credentials revoked: authenticate again")
}

// endedLastLine is revokedLastLine with the last line's message.
func endedLastLine(t *testing.T, rest []byte, jid, message string) {
	t.Helper()
	lines := strings.SplitAfter(string(rest), "\n")
	require.Len(t, lines, 2, "one last line, ended: %q", rest)
	require.Empty(t, lines[1], "nothing after it: %q", rest)
	var end map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &end), lines[0])
	assert.Equal(t, jid, end["jid"])
	assert.EqualValues(t, 1, end["state"], "the job as the stream knew it: running")
	assert.Equal(t, map[string]any{}, end["return_data"], "no output")
	assert.Equal(t, message, end["message"])
}

// A deploy refused because its host is locked names the job holding the
// lock only to a caller that may see that job: to a credential limited to
// its own jobs, another user's job is not named.
func TestConflictNamesOnlyJobsTheCallerSees(t *testing.T) {
	const deployer = "deployer-0123456789abcdef"
	s := startSecured(t, adminToken+" name=admin\n"+deployer+" name=deployer ops=deploy jobs=own\n", "")
	release := filepath.Join(s.dir, "release")
	require.NoError(t, os.MkdirAll(filepath.Join(s.dir, "roles", "slow"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "roles", "slow", "main.sh"),
		[]byte("#!/bin/sh\nwhile [ ! -e "+release+" ]; do sleep 0.05; done\n"), 0o755))
	holder := s.submit(t, "/deploy", adminToken, `{"targets":["web1"],"role":"slow"}`)
	defer func() {
		require.NoError(t, os.WriteFile(release, nil, 0o600))
		s.finished(t, holder, adminToken)
	}()
	code, b := s.call(t, "POST", "/deploy", deployer, `{"targets":["web1"],"role":"web"}`)
	assert.Equal(t, http.StatusConflict, code, string(b))
	assert.JSONEq(t, `{"message":"operate conflict: host web1 is locked by a running job of another user"}`, string(b))
	code, b = s.call(t, "POST", "/deploy", adminToken, `{"targets":["web1"],"role":"web"}`)
	assert.Equal(t, http.StatusConflict, code, string(b))
	assert.Contains(t, string(b), holder, "a caller that sees every job is told which one")
	assert.Empty(t, s.canaryFiles(t), "neither refused deploy ran")
}

// A client certificate whose cert: line a reload removes is refused at
// once on a connection already open (its handshake was before the
// reload), and its follow stream ends with the last line of a revoked
// credential and nothing more, recorded in the audit trail.
func TestRevokedCertificateEndsItsFollowAndConnection(t *testing.T) {
	s, ca, roots := startTLS(t, t.TempDir(), adminToken+" name=admin\ncert:alice ops=execute\n")
	tlsConf := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{ca.Client(t, "alice")}}
	streams := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	requests := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer streams.CloseIdleConnections()
	defer requests.CloseIdleConnections()
	release := filepath.Join(s.dir, "release")
	s.client = requests
	jid := s.submit(t, "/execute", "", `{"targets":["web1"],"cmd":"while [ ! -e `+release+` ]; do sleep 0.05; done; echo after-revocation"}`)

	stream := s.followRunning(t, streams, "", jid)

	require.NoError(t, os.WriteFile(s.tokens, []byte(adminToken+" name=admin\n"), 0o600))
	s.sighup(t, "credentials reloaded")
	code, _, reused := getOn(t, requests, s.base+"/jobs")
	assert.True(t, reused, "the connection the job was submitted on")
	assert.Equal(t, http.StatusUnauthorized, code)
	rest, err := io.ReadAll(stream) // the job is still running
	require.NoError(t, err)
	revokedLastLine(t, rest, jid)
	assert.Equal(t, []string{"follow of job " + jid + " ended: the credentials reloaded no longer allow it"}, s.denials(t, "alice"))

	require.NoError(t, os.WriteFile(release, nil, 0o600))
	s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	assert.EqualValues(t, 0, s.finished(t, jid, adminToken)["state"], "the job itself runs on")
}

// A reload of tls_client_ca that keeps the CA of a client certificate
// leaves its connections working; one that drops it refuses the
// certificate at once on a connection already open (its handshake was
// before the reload), with the reason, and ends its follow stream with
// nothing more, recorded in the audit trail. A certificate of the new CA
// authenticates on a new connection.
func TestClientCAReloadRefusesConnectionsAlreadyOpen(t *testing.T) {
	dir := t.TempDir()
	s, ca1, roots := startTLS(t, dir, adminToken+" name=admin\ncert:alice ops=execute\ncert:bob ops=read\n")
	ca2 := testpki.NewCA(t, "exed test CA 2")
	tlsConf := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{ca1.Client(t, "alice")}}
	streams := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	requests := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	defer streams.CloseIdleConnections()
	defer requests.CloseIdleConnections()
	kept, release, once := filepath.Join(s.dir, "kept"), filepath.Join(s.dir, "release"), filepath.Join(s.dir, "once")
	s.client = requests
	// One host (the first to make the directory) ends once kept exists,
	// the other once release does: an event for each step.
	jid := s.submit(t, "/execute", "", `{"targets":["web1","web2"],"cmd":"if mkdir `+once+` 2>/dev/null; then `+
		`while [ ! -e `+kept+` ]; do sleep 0.05; done; echo kept-CA1; else `+
		`while [ ! -e `+release+` ]; do sleep 0.05; done; echo after-revocation; fi"}`)

	stream := s.followRunning(t, streams, "", jid)

	// get sends GET /jobs on the connection the job was submitted on.
	get := func() (int, string) {
		t.Helper()
		code, body, reused := getOn(t, requests, s.base+"/jobs")
		assert.True(t, reused, "the connection opened under CA1 alone")
		return code, body
	}
	caPath := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caPath, append(ca1.PEM(), ca2.PEM()...), 0o600))
	s.sighup(t, "client CA changed")
	code, b := get()
	assert.Equal(t, http.StatusOK, code, "CA1 is still in the file: %s", b)
	require.NoError(t, os.WriteFile(kept, nil, 0o600))
	line, err := stream.ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, line, "kept-CA1", "the stream goes on")

	require.NoError(t, os.WriteFile(caPath, ca2.PEM(), 0o600))
	s.sighup(t, "client CA changed")
	code, b = get()
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.JSONEq(t, `{"message":"client certificate no longer verifies: the client CA reloaded does not sign it"}`, b)
	rest, err := io.ReadAll(stream) // the job is still running
	require.NoError(t, err)
	// The stream of the certificate CA1 signed ends with a last line
	// that says why.
	endedLastLine(t, rest, jid, "stream ended: client certificate no longer verifies: the client CA reloaded does not sign it: connect again with a valid certificate")
	assert.Equal(t, []string{"follow of job " + jid + " ended: client certificate no longer verifies: the client CA reloaded does not sign it"},
		s.denials(t, "alice"))

	s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		Certificates: []tls.Certificate{ca2.Client(t, "bob")}}}}
	code, body := s.call(t, "GET", "/jobs", "", "")
	assert.Equal(t, http.StatusOK, code, "a certificate of CA2, on a new connection: %s", body)
	require.NoError(t, os.WriteFile(release, nil, 0o600))
	assert.EqualValues(t, 0, s.finished(t, jid, adminToken)["state"], "the job itself runs on")
}
