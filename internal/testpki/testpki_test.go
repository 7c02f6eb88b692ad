package testpki_test

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/0ops/exed/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The files WriteFiles writes load as the certificate they were made
// from, chain and key included, and it verifies to the root.
func TestWriteFilesLoads(t *testing.T) {
	root := testpki.NewCA(t, "root")
	cert := root.Intermediate(t, "intermediate").Client(t, "alice")
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "alice.pem"), filepath.Join(dir, "alice.key")
	testpki.WriteFiles(t, cert, certPath, keyPath)

	loaded, err := tls.LoadX509KeyPair(certPath, keyPath)
	require.NoError(t, err)
	assert.Equal(t, cert.Certificate, loaded.Certificate, "the leaf, then the intermediate")
	assert.True(t, cert.Leaf.Equal(loaded.Leaf))
	inter, err := x509.ParseCertificate(loaded.Certificate[1])
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(inter)
	_, err = loaded.Leaf.Verify(x509.VerifyOptions{Roots: testpki.Pool(root), Intermediates: pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err)
}
