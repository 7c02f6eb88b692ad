package http

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// JSONErrorListener wraps ln, the plain-TCP listener of an *http.Server
// serving the API, so that the error answers net/http writes by itself,
// before any handler runs, carry a {"message"} JSON body like every other
// error of the API (API.md) instead of text/plain:
//
//   - 400 for a request that does not parse: a malformed request line,
//     header name or value, a missing or malformed Host header;
//   - 431 for a request head over http.Server.MaxHeaderBytes;
//   - 501 for an unsupported Transfer-Encoding;
//   - 505 for an HTTP version other than 1.x;
//   - 417 (otherwise an empty body) for an Expect header other than
//     100-continue.
//
// Status codes are unchanged. Serve the API with
// srv.Serve(exehttp.JSONErrorListener(ln)). It is for plain HTTP: under
// TLS the bytes it would see are encrypted, and wrapping a TLS listener
// would hide the *tls.Conn net/http needs.
//
// net/http writes these answers with one Write of a fixed form (server.go,
// conn.serve); that form is what is recognised, and any other write passes
// through untouched.
func JSONErrorListener(ln net.Listener) net.Listener { return &jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l *jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

// jsonErrorConn rewrites net/http's canned error answers on the way out.
type jsonErrorConn struct{ net.Conn }

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	out, ok := rewriteCannedError(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite keeps the half-close net/http does after a 431 (so the client
// reads the answer before the connection is reset).
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// cannedError is the answer net/http writes when it cannot read a request:
// "HTTP/1.1 <code> <text>[: <detail>]" with text/plain headers and a body
// of the same words (or, for 501, of its own).
var cannedError = regexp.MustCompile("\\AHTTP/1\\.1 ([45][0-9][0-9]) [^\r\n]*\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n([^\r\n]*)\\z")

// defaultMessages are the messages of the canned answers without a detail.
var defaultMessages = map[int]string{
	http.StatusBadRequest:                  "malformed HTTP request",
	http.StatusRequestHeaderFieldsTooLarge: "request header fields are too large",
	http.StatusHTTPVersionNotSupported:     "unsupported HTTP version",
	http.StatusExpectationFailed:           "unsupported Expect header: only 100-continue is supported",
}

// rewriteCannedError returns the JSON form of a canned net/http error
// answer, or false for any other write.
func rewriteCannedError(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 4")) && !bytes.HasPrefix(p, []byte("HTTP/1.1 5")) {
		return nil, false
	}
	if m := cannedError.FindSubmatch(p); m != nil {
		code, _ := strconv.Atoi(string(m[1]))
		return jsonErrorAnswer(code, cannedMessage(code, string(m[2])), nil), true
	}
	return rewriteExpectationFailed(p)
}

// cannedMessage turns a canned body ("400 Bad Request: missing required
// Host header", "Unsupported transfer encoding") into a message.
func cannedMessage(code int, body string) string {
	msg := defaultMessages[code]
	if msg == "" {
		msg = strings.ToLower(http.StatusText(code))
	}
	detail, ok := strings.CutPrefix(body, strconv.Itoa(code)+" "+http.StatusText(code))
	if !ok {
		detail = body // 501's body is its own sentence
	}
	detail = strings.TrimPrefix(detail, ": ")
	if detail == "" {
		return msg
	}
	return msg + ": " + strings.ToLower(detail[:1]) + detail[1:]
}

// rewriteExpectationFailed recognises the 417 net/http answers, through
// the response writer, to an Expect header other than 100-continue: a
// head of Connection, Date and Content-Length: 0, and no body.
func rewriteExpectationFailed(p []byte) ([]byte, bool) {
	head, ok := bytes.CutSuffix(p, []byte("\r\n\r\n"))
	if !ok {
		return nil, false
	}
	lines := strings.Split(string(head), "\r\n")
	if lines[0] != "HTTP/1.1 417 Expectation Failed" {
		return nil, false
	}
	var keep []string
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ": ")
		switch {
		case name == "Connection" && value == "close", name == "Content-Length" && value == "0":
		case name == "Date":
			keep = append(keep, l)
		default:
			return nil, false
		}
		seen[name] = true
	}
	if !seen["Connection"] || !seen["Content-Length"] {
		return nil, false
	}
	return jsonErrorAnswer(http.StatusExpectationFailed, defaultMessages[http.StatusExpectationFailed], keep), true
}

// jsonErrorAnswer is a complete HTTP/1.1 answer that closes the connection
// with a {"message"} body.
func jsonErrorAnswer(code int, msg string, extra []string) []byte {
	body, _ := json.Marshal(map[string]string{"message": msg})
	body = append(body, '\n')
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
	b.WriteString("Content-Type: application/json\r\nConnection: close\r\n")
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}

// muxErrorsAsJSON answers, in JSON, the requests http.ServeMux would answer
// itself in another form: a request target of "*" (an empty 400) and
// CONNECT, whose authority-form target matches no pattern (a text/plain
// 404).
func muxErrorsAsJSON(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.RequestURI == "*":
			w.Header().Set("Connection", "close")
			writeMessage(w, http.StatusBadRequest, `request target "*" is only for OPTIONS`)
		case r.Method == http.MethodConnect:
			writeMessage(w, http.StatusMethodNotAllowed, "method CONNECT is not allowed: this is not a proxy")
		default:
			mux.ServeHTTP(w, r)
		}
	})
}
