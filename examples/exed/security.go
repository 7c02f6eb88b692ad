package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/examples/exed/internal/config"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/hashicorp/go-hclog"
)

// security is what SIGHUP reloads: the credentials file, and the TLS
// certificate, key and client CA. Each is replaced only by a file that
// loads; a bad one is logged and the one in force stays.
type security struct {
	cfg   config.API
	creds *auth.Keeper // nil without auth_token_file
	tls   *tlsFiles    // nil without tls_cert
	audit *exehttp.Audit
}

// loadSecurity reads the credentials and TLS files at start-up, when any
// failure stops exed.
func loadSecurity(cfg *config.Config, log hclog.Logger) (*security, error) {
	s := &security{cfg: cfg.API}
	if cfg.API.AuthTokenFile != "" {
		k, warnings, err := auth.NewKeeper(cfg.API.AuthTokenFile)
		if err != nil {
			return nil, fmt.Errorf("[api] auth_token_file: %w", err)
		}
		for _, w := range warnings {
			log.Warn("[api] auth_token_file: " + w)
		}
		s.creds = k
	}
	if cfg.API.TLS() {
		t := &tlsFiles{cert: cfg.API.TLSCert, key: cfg.API.TLSKey, ca: cfg.API.TLSClientCA}
		if _, err := t.load(); err != nil {
			return nil, err
		}
		s.tls = t
	}
	return s, nil
}

// authenticates reports whether requests must show a token or a client
// certificate.
func (s *security) authenticates() bool { return s.creds != nil || s.cfg.TLSClientCA != "" }

// clientCAs are the client CAs in force, for the API; nil without
// tls_client_ca.
func (s *security) clientCAs() *auth.ClientCAs {
	if s.tls == nil {
		return nil
	}
	return s.tls.cas
}

// reload re-reads every file; what does not load is logged and stays as
// it was. The log line of each reload comes after it is in force, so a
// revoked token is refused from the moment the line is written.
func (s *security) reload(log hclog.Logger) {
	if s.creds != nil {
		warnings, err := s.creds.Reload()
		if err != nil {
			log.Error("reload: [api] auth_token_file not reloaded, the credentials in force stay", "error", err)
		} else {
			for _, w := range warnings {
				log.Warn("[api] auth_token_file: " + w)
			}
			f := s.creds.File()
			log.Info("reload: credentials reloaded", "file", s.cfg.AuthTokenFile, "tokens", f.Tokens(), "certs", f.Certs())
		}
	}
	if s.tls != nil {
		casChanged, err := s.tls.load()
		switch {
		case err != nil:
			log.Error("reload: TLS files not reloaded, the certificate in force stays", "error", err)
		case casChanged:
			// Logged once in force: from now on a certificate the new CAs
			// do not sign is refused on connections already open too.
			log.Info("reload: TLS certificate reloaded; client CA changed, connections already open are verified against it",
				"tls_cert", s.cfg.TLSCert, "tls_client_ca", s.cfg.TLSClientCA)
		default:
			log.Info("reload: TLS certificate reloaded", "tls_cert", s.cfg.TLSCert)
		}
	}
}

// tlsFiles serves the certificate and client CAs last loaded: new
// handshakes take them. Connections already open keep their certificate,
// but not their client CA: the API verifies the client certificate of
// each request against the CAs in force (exehttp.Options.ClientCAs).
type tlsFiles struct {
	cert, key, ca string
	cur           atomic.Pointer[tls.Certificate]
	cas           *auth.ClientCAs // nil without tls_client_ca
}

// load reads the files, and puts them in force only if all of them load.
// It reports whether the client CAs changed.
func (t *tlsFiles) load() (casChanged bool, err error) {
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return false, fmt.Errorf("[api] tls_cert, tls_key: %v", err)
	}
	var cas *x509.CertPool
	if t.ca != "" {
		pem, err := os.ReadFile(t.ca)
		if err != nil {
			return false, fmt.Errorf("[api] tls_client_ca: %v", err)
		}
		cas = x509.NewCertPool()
		if !cas.AppendCertsFromPEM(pem) {
			return false, fmt.Errorf("[api] tls_client_ca: %s holds no PEM certificate", t.ca)
		}
	}
	t.cur.Store(&cert)
	switch {
	case cas == nil:
	case t.cas == nil:
		t.cas = auth.NewClientCAs(cas)
	default:
		casChanged = t.cas.Set(cas)
	}
	return casChanged, nil
}

// config is the server's tls.Config: every handshake reads the
// certificate and client CAs in force, so a reload needs no restart of
// the listener.
func (t *tlsFiles) config() *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{*t.cur.Load()}
		if t.cas != nil {
			// A certificate is asked for, not required: a client may use a
			// bearer token instead. One that is sent must verify.
			c.ClientCAs, c.ClientAuth = t.cas.Pool(), tls.VerifyClientCertIfGiven
		}
		return c, nil
	}
	return base
}

// openAudit opens [log] audit_log: appended to, never readable by others,
// reopened on SIGHUP like the other log files.
func (p *process) openAudit(path string) (io.Writer, error) {
	if path == "" {
		return nil, nil
	}
	if path == "-" {
		return nil, errors.New("[log] audit_log: give a file")
	}
	f, err := openLogFile(path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("[log] audit_log: %v", err)
	}
	p.logFiles = append(p.logFiles, f)
	p.closers = append(p.closers, func() { f.Close() })
	return f, nil
}
