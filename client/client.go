package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"
)

// Client calls one exed API. It is safe for concurrent use.
type Client struct {
	base  *url.URL // scheme, host and path prefix, without a trailing slash
	token string
	hc    *http.Client
	agent string
}

// Option configures a Client (New).
type Option func(*settings) error

type settings struct {
	token      string
	hc         *http.Client
	tls        *tls.Config
	tlsChanged bool
	agent      string
}

// WithToken sends token as "Authorization: Bearer <token>" on every
// request (API.md, Authentication). Empty: no header.
func WithToken(token string) Option {
	return func(s *settings) error { s.token = token; return nil }
}

// WithHTTPClient makes the Client send its requests with hc. Its Timeout
// must be zero (or long) for Follow: a follow stream lasts as long as its
// job. The TLS options cannot be combined with it: set them on hc's
// transport.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error { s.hc = hc; return nil }
}

// WithTLSConfig makes the Client use cfg (cloned) for https URLs; the
// other TLS options then add to it.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(s *settings) error {
		s.tls = cfg.Clone()
		s.tlsChanged = true
		return nil
	}
}

// WithCAFile makes the Client trust the server certificates that the CA
// certificates in the PEM file path signed, instead of the system's
// roots: the CA of the server's [api] tls_cert.
func WithCAFile(path string) Option {
	return func(s *settings) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("CA file %s: no PEM certificate in it", path)
		}
		s.tlsConfig().RootCAs = pool
		return nil
	}
}

// WithClientCert makes the Client present the certificate (chain) in
// certFile, with its key in keyFile (PEM), to servers that ask for one:
// mutual TLS, the server's [api] tls_client_ca.
func WithClientCert(certFile, keyFile string) Option {
	return func(s *settings) error {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		cfg := s.tlsConfig()
		cfg.Certificates = append(cfg.Certificates, cert)
		return nil
	}
}

// WithUserAgent sets the User-Agent header; default "exed-client".
func WithUserAgent(agent string) Option {
	return func(s *settings) error { s.agent = agent; return nil }
}

func (s *settings) tlsConfig() *tls.Config {
	if s.tls == nil {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s.tlsChanged = true
	return s.tls
}

// New returns a Client of the API at baseURL: "http://127.0.0.1:16808",
// or with the path prefix an embedding service mounts it under,
// "https://ops.example.com/exe/". Only http and https URLs are accepted;
// a query or fragment is an error.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("exed URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("exed URL %q: the scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("exed URL %q: no host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("exed URL %q: a query or fragment has no place in it", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	var s settings
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	hc := s.hc
	switch {
	case hc != nil && s.tlsChanged:
		return nil, errors.New("the TLS options cannot be combined with WithHTTPClient: set TLS on its transport")
	case hc == nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if s.tls != nil {
			tr.TLSClientConfig = s.tls
		}
		hc = &http.Client{Transport: tr}
	}
	return &Client{base: u, token: s.token, hc: hc, agent: cmp.Or(s.agent, "exed-client")}, nil
}

// URL is the base URL of the API, without a trailing slash.
func (c *Client) URL() string { return c.base.String() }

// Error is a non-2xx answer of the API: its status code and the message
// of its {"message": "..."} body (API.md, General rules). Match it with
// errors.As:
//
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict { ... }
type Error struct {
	StatusCode int    // the HTTP status code: 400, 401, 403, 404, 409, 413, 415, 501, 503...
	Message    string // the server's message; the body itself, cut, when it was not exed's JSON
	Method     string // the request's method
	Path       string // the request's path, prefix included
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, msg)
}

// endpoint is the URL of path (segments joined and escaped) with query q.
func (c *Client) endpoint(q url.Values, segments ...string) *url.URL {
	u := c.base.JoinPath(segments...)
	u.RawQuery = q.Encode()
	return u
}

// newRequest builds a request; a non-nil body is sent as JSON.
func (c *Client) newRequest(ctx context.Context, method string, u *url.URL, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request and decodes a 2xx answer of status want into out (nil:
// the body is discarded). Any other status is an *Error.
func (c *Client) do(ctx context.Context, method string, u *url.URL, body, out any, want ...int) error {
	req, err := c.newRequest(ctx, method, u, body)
	if err != nil {
		return err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if !wanted(res.StatusCode, want) {
		return readError(res)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
		return nil
	}
	return jsonDecode(res, out)
}

// jsonDecode reads a JSON answer into out.
func jsonDecode(res *http.Response, out any) error {
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", res.Request.Method, res.Request.URL.Path, err)
	}
	return nil
}

func wanted(code int, want []int) bool {
	if len(want) == 0 {
		return code >= 200 && code < 300
	}
	for _, w := range want {
		if code == w {
			return true
		}
	}
	return false
}

// maxErrorBody bounds how much of an error answer is read: exed's are one
// short line; a proxy's HTML page need not be read whole.
const maxErrorBody = 64 << 10

// readError turns a non-2xx answer into an *Error.
func readError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	e := &Error{StatusCode: res.StatusCode, Method: res.Request.Method, Path: res.Request.URL.Path}
	var body struct {
		Message *string `json:"message"`
	}
	if json.Unmarshal(b, &body) == nil && body.Message != nil {
		e.Message = *body.Message
	} else {
		// Not exed's answer (a proxy's page): its first line, cut.
		line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if len(line) > 200 {
			line = line[:200]
			for !utf8.ValidString(line) {
				line = line[:len(line)-1]
			}
			line += "..."
		}
		e.Message = line
	}
	return e
}
