package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/0ops/exed/client"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testpki"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// certPool is a test CA that signs the server's certificate and clients',
// with its certificate in caFile.
type certPool struct {
	*testpki.CA
	dir    string
	caFile string
}

func newCertPool(t *testing.T) *certPool {
	t.Helper()
	p := &certPool{CA: testpki.NewCA(t, "exed test CA"), dir: t.TempDir()}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	require.NoError(t, os.WriteFile(p.caFile, p.PEM(), 0o600))
	return p
}

// issue signs a client certificate for name and writes it and its key
// as PEM.
func (p *certPool) issue(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")
	testpki.WriteFiles(t, p.Client(t, name), certFile, keyFile)
	return certFile, keyFile
}

// serverConfig is the server's TLS: its certificate, and with clientCerts
// the CA it verifies client certificates with, as exed's tls_client_ca.
func (p *certPool) serverConfig(t *testing.T, clientCerts bool) *tls.Config {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.Server(t)}, MinVersion: tls.VersionTLS12}
	if clientCerts {
		cfg.ClientCAs, cfg.ClientAuth = testpki.Pool(p.CA), tls.VerifyClientCertIfGiven
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
	certFile, keyFile := ca.issue(t, "deployer")

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
