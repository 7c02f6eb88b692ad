package http_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testpki"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// caServer is a server over TLS whose handshakes verify client
// certificates against the client CAs in force, as exed's do.
type caServer struct {
	*server
	cas      *auth.ClientCAs
	serverCA *testpki.CA
	trail    *lockedBuffer
}

// newCAServer serves with the client CAs of pool; creds nil: client
// certificates authenticate alone, with full access.
func newCAServer(t *testing.T, creds *auth.Keeper, cas ...*testpki.CA) *caServer {
	t.Helper()
	s := &caServer{cas: auth.NewClientCAs(testpki.Pool(cas...)), serverCA: testpki.NewCA(t, "server CA"), trail: &lockedBuffer{}}
	cert := s.serverCA.Server(t)
	conf := &tls.Config{Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"},
				ClientCAs: s.cas.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}, nil
		}}
	s.server = newServer(t, serverOpts{tls: conf, api: exehttp.Options{Credentials: creds, ClientCerts: true,
		ClientCAs: s.cas, Audit: exehttp.NewAudit(s.trail, nil)}})
	return s
}

// client is a client of its own (its own connections) showing cert, if
// any.
func (s *caServer) client(certs ...tls.Certificate) *http.Client {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: testpki.Pool(s.serverCA), Certificates: certs}}}
	s.t.Cleanup(c.CloseIdleConnections)
	return c
}

// get sends GET path with c, with a bearer token unless "", and says
// whether it went on a connection c had open.
func (s *caServer) get(c *http.Client, path, token string) (resp, bool) {
	s.t.Helper()
	reused := false
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	require.NoError(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: b}, reused
}

// follow opens a follow of jid with c and reads its first line.
func (s *caServer) follow(c *http.Client, jid, token string) ndjson {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // bounds every read of the stream
	s.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/jobs/"+jid+"?follow=1", nil)
	require.NoError(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { res.Body.Close() })
	require.Equal(s.t, http.StatusOK, res.StatusCode)
	st := ndjson{s.t, bufio.NewReader(res.Body)}
	st.job()
	return st
}

func (s *caServer) auditMessages(user string) []string {
	var out []string
	for _, rec := range auditRecords(s.t, s.trail) {
		if rec.Action == "deny" && rec.User == user {
			out = append(out, rec.Message)
		}
	}
	return out
}

// Client CAs set again to an equal pool, or to one that still signs a
// connection's certificate, leave it working: its requests and its
// follow go on. After they change to ones that do not sign it, its next
// request is 401 with the reason, whether it shows the certificate or a
// token, and the follows it had open end with nothing more, recorded in
// the audit trail; a certificate the new CAs sign works on a new
// connection, and a token's follow on a connection without a
// certificate goes on. With or without a credentials file.
func TestClientCAChangeRefusesOpenConnections(t *testing.T) {
	creds, _, err := auth.Parse([]byte("cert:alice\ncert:bob\n"+keepTok+" name=keep\n"), "test")
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		creds *auth.Keeper
	}{{"credentials file", auth.KeeperOf(creds)}, {"certificates alone", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			ca1, ca2 := testpki.NewCA(t, "CA1"), testpki.NewCA(t, "CA2")
			s := newCAServer(t, tc.creds, ca1)
			alice := s.client(ca1.Client(t, "alice"))
			r, _ := s.get(alice, "/jobs", "")
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			jid := s.storedJob()
			aliceStream := s.follow(s.client(ca1.Client(t, "alice")), jid, "")
			var tokenStream ndjson
			if tc.creds != nil {
				tokenStream = s.follow(s.client(), jid, keepTok)
			}

			assert.False(t, s.cas.Set(testpki.Pool(ca1)), "the same CA")
			require.True(t, s.cas.Set(testpki.Pool(ca1, ca2)), "CA2 added")
			r, reused := s.get(alice, "/jobs", "")
			assert.True(t, reused, "the connection opened under CA1 alone")
			assert.Equal(t, http.StatusOK, r.status, "CA1 still signs it: %s", r.body)
			s.appendEvents(jid, 0, 1)
			assert.JSONEq(t, eventLine(1), aliceStream.line(), "the stream goes on")
			assert.Empty(t, s.auditMessages("alice"), "nothing revoked")

			require.True(t, s.cas.Set(testpki.Pool(ca2)), "CA1 removed")
			r, reused = s.get(alice, "/jobs", "")
			assert.True(t, reused, "the connection opened under CA1")
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "client certificate no longer verifies: the client CA reloaded does not sign it", r.message(t))
			if tc.creds != nil {
				r, reused = s.get(alice, "/jobs", keepTok)
				assert.True(t, reused)
				assert.Equal(t, http.StatusUnauthorized, r.status, "a token on that connection: %s", r.body)
			}
			rest, err := io.ReadAll(aliceStream.rd)
			require.NoError(t, err, "the stream ends")
			lastLine(t, rest, jid, exe.JobRunning, "stream ended: client certificate no longer verifies: the client CA reloaded does not sign it: connect again with a valid certificate")
			assert.Equal(t, []string{"follow of job " + jid + " ended: client certificate no longer verifies: the client CA reloaded does not sign it"},
				s.auditMessages("alice"))

			r, _ = s.get(s.client(ca2.Client(t, "bob")), "/jobs", "")
			assert.Equal(t, http.StatusOK, r.status, "a certificate CA2 signs, on a new connection: %s", r.body)
			if tc.creds != nil {
				assert.JSONEq(t, eventLine(1), tokenStream.line())
				s.appendEvents(jid, 1, 2)
				assert.JSONEq(t, eventLine(2), tokenStream.line(), "the token's stream goes on")
				s.finish(jid)
				assert.EqualValues(t, exe.JobDone, tokenStream.job()["state"])
				tokenStream.end()
			}
			require.Eventually(t, func() bool { return watchers() == 0 }, 10*time.Second, 5*time.Millisecond)
		})
	}
}

// A client certificate that expires while its connection is open is
// refused from then on, as a new handshake would refuse it: its follow
// ends at the expiry, with a last line saying why, and the next request on the
// connection is 401 with the reason.
func TestExpiredCertificateEndsItsFollowAndConnection(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	s := newCAServer(t, nil, ca)
	// Valid for the few seconds the test needs to connect and follow
	// (x509 keeps whole seconds): the test waits for it to expire.
	cert := ca.Leaf(t, &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}, NotAfter: time.Now().Add(4 * time.Second),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	alice := s.client(cert)
	r, _ := s.get(alice, "/jobs", "")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	jid := s.storedJob()
	stream := s.follow(s.client(cert), jid, "")

	rest, err := io.ReadAll(stream.rd) // bounded by follow's context
	require.NoError(t, err, "the stream ends when the certificate expires")
	line, after, found := bytes.Cut(rest, []byte("\n"))
	require.True(t, found, "a last line comes: %q", rest)
	assert.Empty(t, string(after), "nothing after the last line")
	assert.Contains(t, string(line), `"message":"stream ended: client certificate no longer verifies: x509: certificate has expired`)
	assert.True(t, time.Now().After(cert.Leaf.NotAfter), "not before the expiry")
	r, reused := s.get(alice, "/jobs", "")
	assert.True(t, reused, "the connection opened before the expiry")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.message(t), "client certificate no longer verifies: x509: certificate has expired or is not yet valid")
	msgs := s.auditMessages("alice")
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0], "follow of job "+jid+" ended: client certificate no longer verifies: x509: certificate has expired")
	require.Eventually(t, func() bool { return watchers() == 0 }, 10*time.Second, 5*time.Millisecond)
}
