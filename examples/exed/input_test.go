package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A deploy the executor plugin would refuse (its role is missing, its
// extra_vars cannot reach the scripts) is a 400 at submit: the check
// crosses the plugin protocol, and nothing is stored.
func TestDeployRefusedAtSubmit(t *testing.T) {
	dir := t.TempDir()
	roles := filepath.Join(dir, "roles")
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "web"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(roles, "web", "main.sh"), []byte("echo deployed\n"), 0o755))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[sshnative]\nroles = %s\n", freePort(t), roles))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	for body, want := range map[string]string{
		`{"targets":["localhost"],"role":"nope"}`:                                   `role: "nope" not found in the roles directory`,
		`{"targets":["localhost"],"role":"web","partial":["reload"]}`:               `partial: role "web" has no tag script tags/reload.sh`,
		`{"targets":["localhost"],"role":"web","extra_vars":{"a-b":1,"a_b":2}}`:     `extra_vars: "a-b" and "a_b" both become EXE_VAR_A_B`,
		`{"targets":["localhost"],"role":"web","extra_vars":{"k":"x\u0000y"}}`:      `extra_vars: "k" contains a NUL byte`,
		`{"targets":["localhost"],"role":"web","extra_vars":{"port":1,"port":2}}`:   `extra_vars: duplicate key "port"`,
		`{"targets":["localhost"],"role":"web","Extra_Vars":{"a-b":1,"a_b":2}}`:     ``,
		`{"targets":["localhost"],"role":"web","extra_vars":{"server_name":"a"}}`:   ``,
		`{"targets":["localhost"],"role":"web","extra_vars":{"Server_Name":"b"}} `:  ``,
		`{"targets":["localhost"],"role":"web","extra_vars":{"ansible_user":"x"}} `: ``, // only the ansible executor reserves them
	} {
		code, got := httpDo(t, "POST", base+"/deploy", body)
		if want == "" {
			require.Equal(t, 201, code, body+": "+string(got))
			var created map[string]string
			require.NoError(t, json.Unmarshal(got, &created))
			job := follow(t, base, created["jid"])
			assert.EqualValues(t, 0, job["state"], "%s: %v", body, job)
			continue
		}
		assert.Equal(t, 400, code, body+": "+string(got))
		var msg map[string]string
		require.NoError(t, json.Unmarshal(got, &msg))
		assert.Equal(t, map[string]string{"message": want}, msg, body)
	}
	code, got := httpDo(t, "GET", base+"/jobs", "")
	require.Equal(t, 200, code)
	var ids []string
	require.NoError(t, json.Unmarshal(got, &ids))
	assert.Len(t, ids, 4, "only the accepted deploys were stored")
	p.stop(t)
}

// The server's answers to requests net/http cannot read are {"message"}
// JSON too: raw bytes on a TCP connection to the running binary.
func TestProtocolErrorsAreJSON(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, "-c", writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n", freePort(t))))
	for request, want := range map[string]struct {
		status int
		msg    string
	}{
		"GET /ping?target=localhost HTTP/2.5\r\nHost: x\r\n\r\n": {505, "unsupported HTTP version: unsupported protocol version"},
		"GET /ping?target=localhost HTTP/1.1\r\n\r\n":            {400, "malformed HTTP request: missing required Host header"},
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n":   {400, "malformed HTTP request"},
	} {
		c, err := net.Dial("tcp", p.addr)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(c, request)
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, "%q", request)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		c.Close()
		assert.Equal(t, want.status, res.StatusCode, "%q", request)
		assert.Equal(t, "application/json", res.Header.Get("Content-Type"), "%q", request)
		var msg map[string]string
		require.NoError(t, json.Unmarshal(body, &msg), string(body))
		assert.Equal(t, map[string]string{"message": want.msg}, msg, "%q", request)
	}
	p.stop(t)
}

// A token file others can write stops exed with exit code 2 and a message
// naming the file and its mode; short tokens start it with a warning that
// does not show them.
func TestTokenFileChecksAtStart(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("0123456789abcdef0123\n"), 0o600))
	require.NoError(t, os.Chmod(tokens, 0o666))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\nauth_token_file = %s\n", freePort(t), tokens))
	// Bounded: an exed that starts instead of refusing is killed and the
	// test fails, rather than waiting for it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "-c", conf).CombinedOutput()
	require.NoError(t, ctx.Err(), "exed must refuse to start")
	assert.Equal(t, 2, exitCode(t, err), string(out))
	assert.Contains(t, string(out), "exed: [api] auth_token_file: "+tokens+" is writable by group or others (mode 0666)")

	require.NoError(t, os.WriteFile(tokens, []byte("0123456789abcdef0123\nhunter2\n"), 0o600))
	require.NoError(t, os.Chmod(tokens, 0o600))
	p := start(t, dir, "-c", conf)
	logs := p.logs.String()
	assert.Contains(t, logs, "[WARN]  exed: [api] auth_token_file: "+tokens+" line 2: a token of 7 characters is easy to guess")
	assert.NotContains(t, logs, "hunter2")
	req, err := http.NewRequest("GET", "http://"+p.addr+"/target", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer hunter2")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode, "a short token still works")
	p.stop(t)
}
