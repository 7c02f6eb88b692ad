package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handshake runs a TLS handshake over loopback TCP between a client
// showing cert and a server that verifies client certificates against
// the pool cas has in force then, as exed's does; it returns the
// server's state of the connection, or the server's handshake error.
func handshake(t *testing.T, cas *auth.ClientCAs, cert tls.Certificate) (*tls.ConnectionState, error) {
	t.Helper()
	serverCA := testpki.NewCA(t, "server CA")
	serverCert := serverCA.Server(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: testpki.Pool(serverCA),
			Certificates: []tls.Certificate{cert}})
		if err == nil {
			// TLS 1.3: the server verifies the client's certificate after
			// the client's handshake is over; wait for its answer.
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		done <- err
	}()
	raw, err := ln.Accept()
	require.NoError(t, err)
	defer raw.Close()
	server := tls.Server(raw, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{serverCert},
			ClientCAs: cas.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}, nil
	}})
	err = server.Handshake()
	if err == nil {
		_, err = server.Write([]byte{0})
	}
	raw.Close()
	<-done
	if err != nil {
		return nil, err
	}
	st := server.ConnectionState()
	return &st, nil
}

// A connection whose certificate a later pool no longer signs is refused
// by Verify with ErrNotSigned, as a new handshake with it fails; one it
// still signs, or a pool equal to the one in force, changes nothing.
func TestClientCAsVerifyAgainstThePoolInForce(t *testing.T) {
	ca1, ca2 := testpki.NewCA(t, "CA1"), testpki.NewCA(t, "CA2")
	cas := auth.NewClientCAs(testpki.Pool(ca1))
	alice, err := handshake(t, cas, ca1.Client(t, "alice"))
	require.NoError(t, err)
	assert.NoError(t, cas.Verify(alice))
	assert.NoError(t, cas.Verify(nil), "no TLS")
	assert.NoError(t, cas.Verify(&tls.ConnectionState{}), "no certificate")

	changed := cas.Changed()
	assert.False(t, cas.Set(testpki.Pool(ca1)), "another pool of the same CA changes nothing")
	assert.Zero(t, cas.Generation())
	select {
	case <-changed:
		t.Fatal("Changed fired for an equal pool")
	default:
	}

	require.True(t, cas.Set(testpki.Pool(ca2)))
	assert.EqualValues(t, 1, cas.Generation())
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire")
	}
	err = cas.Verify(alice)
	require.ErrorIs(t, err, auth.ErrNotSigned)
	assert.EqualError(t, err, "client certificate no longer verifies: the client CA reloaded does not sign it")
	assert.ErrorIs(t, cas.Verify(alice), auth.ErrNotSigned, "and again: the verdict is kept")
	fresh, err := handshake(t, cas, ca1.Client(t, "alice"))
	require.NoError(t, err)
	assert.Empty(t, fresh.PeerCertificates, "a new connection: the client has no certificate of the CAs the server names")
	bob, err := handshake(t, cas, ca2.Client(t, "bob"))
	require.NoError(t, err)
	assert.NoError(t, cas.Verify(bob))

	require.True(t, cas.Set(testpki.Pool(ca1, ca2)))
	assert.NoError(t, cas.Verify(alice), "a pool that still signs it")
	assert.NoError(t, cas.Verify(bob))
}

// A verdict is for the leaf with the intermediates it was presented
// with: the same leaf without them does not verify.
func TestClientCAsVerifyTheChainPresented(t *testing.T) {
	root, other := testpki.NewCA(t, "root"), testpki.NewCA(t, "other")
	inter := root.Intermediate(t, "intermediate")
	cas := auth.NewClientCAs(testpki.Pool(root))
	cert := inter.Client(t, "carol")
	st, err := handshake(t, cas, cert)
	require.NoError(t, err)
	require.Len(t, st.PeerCertificates, 2)
	require.True(t, cas.Set(testpki.Pool(other)))
	assert.ErrorIs(t, cas.Verify(st), auth.ErrNotSigned)
	require.True(t, cas.Set(testpki.Pool(root)))
	assert.NoError(t, cas.Verify(st), "the intermediate leads to the root")
	leafOnly := &tls.ConnectionState{PeerCertificates: st.PeerCertificates[:1]}
	assert.ErrorIs(t, cas.Verify(leafOnly), auth.ErrNotSigned, "not the verdict of the chain with its intermediate")
	assert.NoError(t, cas.Verify(st))
}

// Verify checks what the handshake checks: a certificate for servers
// only is refused; a nil pool is empty, never the system's roots.
func TestClientCAsVerifyAsTheHandshake(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	cas := auth.NewClientCAs(testpki.Pool(ca))
	require.True(t, cas.Set(testpki.Pool(ca, testpki.NewCA(t, "CA2"))))
	serverOnly := ca.Leaf(t, &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	err := cas.Verify(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{serverOnly.Leaf}})
	assert.ErrorContains(t, err, "client certificate no longer verifies: x509: certificate specifies an incompatible key usage")
	_, err = handshake(t, cas, serverOnly)
	assert.Error(t, err, "nor does the handshake take it")

	empty := auth.NewClientCAs(nil)
	assert.ErrorIs(t, empty.Verify(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{ca.Client(t, "dave").Leaf}}), auth.ErrNotSigned)
}

// A certificate that expires after its handshake no longer verifies,
// whether the first pool is in force or another; VerifyUntil says when
// a certificate stops verifying: at the first expiry of its chain.
func TestClientCAsVerifyExpiry(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	cas := auth.NewClientCAs(testpki.Pool(ca))
	halfHour := ca.Leaf(t, &x509.Certificate{NotAfter: time.Now().Add(30 * time.Minute),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	st, err := handshake(t, cas, halfHour)
	require.NoError(t, err)
	until, err := cas.VerifyUntil(st)
	require.NoError(t, err)
	assert.Equal(t, halfHour.Leaf.NotAfter, until, "the leaf expires before its CA")

	// The state of a connection whose handshake was two hours ago, with
	// a certificate valid for an hour then.
	expired := ca.Leaf(t, &x509.Certificate{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).Leaf
	old := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{expired}, VerifiedChains: [][]*x509.Certificate{{expired, ca.Cert}}}
	for _, when := range []string{"the first pool", "another pool"} {
		err := cas.Verify(old)
		assert.ErrorContains(t, err, "client certificate no longer verifies: x509: certificate has expired or is not yet valid", when)
		require.True(t, cas.Set(testpki.Pool(ca, testpki.NewCA(t, "CA2"))))
	}
	until, err = cas.VerifyUntil(st)
	require.NoError(t, err, "the live one still verifies")
	assert.Equal(t, halfHour.Leaf.NotAfter, until)
	until, err = cas.VerifyUntil(nil)
	assert.NoError(t, err)
	assert.True(t, until.IsZero())
}
