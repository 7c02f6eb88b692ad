package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/client"
	"github.com/0ops/exed/exe"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// certPool is a test CA that signs the server's certificate and clients'.
type certPool struct {
	dir    string
	key    *ecdsa.PrivateKey
	cert   *x509.Certificate
	caFile string
}

func newCertPool(t *testing.T) *certPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "exed test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &certPool{dir: t.TempDir(), key: key, cert: cert}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return p
}

// issue signs a certificate for name and writes it and its key as PEM.
func (p *certPool) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

// serverConfig is the server's TLS: its certificate, and with clientCerts
// the CA it verifies client certificates with, as exed's tls_client_ca.
func (p *certPool) serverConfig(t *testing.T, clientCerts bool) *tls.Config {
	t.Helper()
	certFile, keyFile := p.issue(t, "server", x509.ExtKeyUsageServerAuth)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCerts {
		pool := x509.NewCertPool()
		pool.AddCert(p.cert)
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg
}

// Over HTTPS, the client trusts the server by the CA file and
// authenticates with its certificate: the job's user is the certificate's
// name. Without the certificate it is a 401; without the CA file, the
// handshake fails.
func TestMutualTLS(t *testing.T) {
	ca := newCertPool(t)
	s := newServer(t, serverOpts{tls: true, caPool: ca, api: exehttp.Options{ClientCerts: true}})
	ctx := context.Background()
	certFile, keyFile := ca.issue(t, "deployer", x509.ExtKeyUsageClientAuth)

	c := newClient(t, s.url, client.WithCAFile(ca.caFile), client.WithClientCert(certFile, keyFile))
	jid, err := c.SubmitPing(ctx, "h1")
	require.NoError(t, err)
	_, job := follow(t, c, jid)
	assert.Equal(t, "deployer", job.User)
	assert.Equal(t, exe.JobDone, job.State)

	_, err = newClient(t, s.url, client.WithCAFile(ca.caFile)).Jobs(ctx)
	assert.Equal(t, http.StatusUnauthorized, apiError(t, err).StatusCode)

	_, err = newClient(t, s.url).Jobs(ctx)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown, "the system roots do not know the test CA")

	_, err = client.New(s.url, client.WithCAFile(filepath.Join(ca.dir, "missing.pem")))
	assert.ErrorContains(t, err, "CA file")
	_, err = client.New(s.url, client.WithCAFile(keyFile))
	assert.ErrorContains(t, err, "no PEM certificate")
	_, err = client.New(s.url, client.WithClientCert(certFile, ca.caFile))
	assert.ErrorContains(t, err, "client certificate")
	_, err = client.New(s.url, client.WithHTTPClient(http.DefaultClient), client.WithCAFile(ca.caFile))
	assert.ErrorContains(t, err, "cannot be combined")
}
