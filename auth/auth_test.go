package auth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	legacy   = "0123456789abcdef-legacy"
	webToken = "0123456789abcdef-web-execute"
	hashed   = "0123456789abcdef-hashed"
)

func sum(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }

func TestParseScopes(t *testing.T) {
	text := "# comment\n\n" + legacy + "\n" +
		webToken + " name=ci ops=execute,deploy:web-* hosts=web* jobs=own\n" +
		"sha256:" + sum(hashed) + " name=reader ops=read\n" +
		"cert:scraper.example ops=metrics\n"
	f, warnings, err := auth.Parse([]byte(text), "tokens")
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, 3, f.Tokens())
	assert.Equal(t, 1, f.Certs())

	id, ok := f.Token(legacy)
	require.True(t, ok)
	assert.Equal(t, "token#3", id.Name, "an unnamed token is named after its line")
	assert.Equal(t, auth.Full, id.Scope, "a line with only a token has full access")

	id, ok = f.Token(webToken)
	require.True(t, ok)
	assert.Equal(t, "ci", id.Name)
	assert.Equal(t, "web*", id.Hosts)
	assert.True(t, id.OwnJobs)
	assert.True(t, id.CanRead())
	assert.True(t, id.CanChange())
	assert.False(t, id.CanMetrics())
	assert.Empty(t, id.AllowRequest(exe.Request{Operate: exe.OpExecute}))
	assert.Empty(t, id.AllowRequest(exe.Request{Operate: exe.OpDeploy, Deploy: exe.DeployArgs{Role: "web-nginx"}}))
	assert.Equal(t, `deploy of role "db" is not allowed`, id.AllowRequest(exe.Request{Operate: exe.OpDeploy, Deploy: exe.DeployArgs{Role: "db"}}))
	assert.Equal(t, `operation "ping" is not allowed`, id.AllowRequest(exe.Request{Operate: exe.OpPing}))
	assert.Equal(t, `operation "tasks" is not allowed`, id.AllowRequest(exe.Request{Operate: exe.OpTask}))

	id, ok = f.Token(hashed)
	require.True(t, ok, "a sha256: line accepts the token whose hash it holds")
	assert.Equal(t, "reader", id.Name)
	assert.True(t, id.CanRead())
	assert.False(t, id.CanChange(), "ops=read is read-only")
	assert.NotEmpty(t, id.AllowRequest(exe.Request{Operate: exe.OpExecute}))
	_, ok = f.Token("sha256:" + sum(hashed))
	assert.False(t, ok, "the hash itself is not a token")

	_, ok = f.Token("0123456789abcdef")
	assert.False(t, ok)
	_, ok = f.Token("")
	assert.False(t, ok)

	id, ok = f.Cert([]string{"other", "scraper.example"})
	require.True(t, ok)
	assert.Equal(t, "scraper.example", id.Name)
	assert.True(t, id.CanMetrics())
	assert.False(t, id.CanRead(), "a scraper reads metrics only")
	_, ok = f.Token("scraper.example")
	assert.False(t, ok, "a cert: line is no token")
}

func TestParseTaskGlobs(t *testing.T) {
	f, _, err := auth.Parse([]byte(webToken+" ops=tasks:ping*,tasks:roll\n"), "tokens")
	require.NoError(t, err)
	id, _ := f.Token(webToken)
	assert.Empty(t, id.AllowRequest(exe.Request{Operate: exe.OpTask, Task: exe.TaskArgs{Type: "pingwave"}}))
	assert.Equal(t, `task type "reboot" is not allowed`, id.AllowRequest(exe.Request{Operate: exe.OpTask, Task: exe.TaskArgs{Type: "reboot"}}))
}

func TestParseErrors(t *testing.T) {
	for text, want := range map[string]string{
		"":                                       "tokens holds no token",
		"# only a comment\n":                     "tokens holds no token",
		"sha256:abc\n":                           "tokens line 1: sha256: must be followed by the 64 hex digits",
		webToken + " ops=reboot\n":               `tokens line 1: ops: unknown "reboot"`,
		webToken + " ops=\n":                     "tokens line 1: ops: list what is allowed",
		webToken + " jobs=mine\n":                `tokens line 1: jobs: "mine" is not own or all`,
		webToken + " name=a b\n":                 `tokens line 1: "b" is not key=value`,
		webToken + " name=a/b\n":                 `tokens line 1: name "a/b": use 1-64`,
		webToken + " hosts=~(\n":                 "tokens line 1: hosts: ",
		webToken + " color=red\n":                `tokens line 1: unknown key "color"`,
		webToken + " jobs=own jobs=all\n":        "tokens line 1: jobs is given twice",
		webToken + "\n" + webToken + " name=x\n": "tokens line 2: the same token is on an earlier line",
		"cert:a\ncert:a\n":                       "tokens line 2: cert:a is given twice",
		"cert:\n":                                "tokens line 1: cert: must be followed by",
		legacy + "\n" + webToken + " jobs=own\n": "tokens line 2: jobs=own needs name=: without one the token is token#2",
	} {
		_, _, err := auth.Parse([]byte(text), "tokens")
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
		assert.NotContains(t, err.Error(), webToken, "an error never shows a token")
	}
}

func TestShortTokenWarned(t *testing.T) {
	_, warnings, err := auth.Parse([]byte("s3cret\n"), "tokens")
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "tokens line 1: a token of 6 characters is easy to guess")
	assert.NotContains(t, warnings[0], "s3cret")
}

// A reload that fails keeps the credentials in force, and Changed stays
// open; one that loads replaces them, and closes it.
func TestKeeperReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(p, []byte(legacy+"\n"), 0o600))
	k, _, err := auth.NewKeeper(p)
	require.NoError(t, err)
	_, ok := k.File().Token(legacy)
	require.True(t, ok)
	changed := k.Changed()
	closed := func() bool {
		select {
		case <-changed:
			return true
		default:
			return false
		}
	}

	require.NoError(t, os.WriteFile(p, []byte(webToken+" ops=nonsense\n"), 0o600))
	_, err = k.Reload()
	require.Error(t, err)
	_, ok = k.File().Token(legacy)
	assert.True(t, ok, "a file that does not parse leaves the old tokens in force")

	require.NoError(t, os.Chmod(p, 0o622))
	require.NoError(t, os.WriteFile(p, []byte(webToken+"\n"), 0o622))
	_, err = k.Reload()
	require.ErrorContains(t, err, "writable by group or others")
	_, ok = k.File().Token(webToken)
	assert.False(t, ok)
	assert.False(t, closed(), "no reload loaded")

	require.NoError(t, os.Chmod(p, 0o600))
	_, err = k.Reload()
	require.NoError(t, err)
	assert.True(t, closed(), "the reload put other credentials in force")
	assert.NotEqual(t, changed, k.Changed(), "a new channel for the next change")
	_, ok = k.File().Token(legacy)
	assert.False(t, ok, "a revoked token is refused after the reload")
	_, ok = k.File().Token(webToken)
	assert.True(t, ok)
}

// A file that group or others can write is refused, naming the file and
// its mode; one that others can read, or that holds short tokens, is
// warned about without showing a token.
func TestLoadFileChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(text string, mode os.FileMode) string {
		p := filepath.Join(dir, "tokens")
		_ = os.Remove(p)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	long1, long2 := "0123456789abcdef0123", "fedcba9876543210"
	for _, mode := range []os.FileMode{0o666, 0o622, 0o620, 0o602, 0o660, 0o777} {
		p := write(long1+"\n", mode)
		f, _, err := auth.LoadFile(p)
		assert.Nil(t, f)
		require.Error(t, err, "%04o", mode)
		assert.Equal(t, fmt.Sprintf("%s is writable by group or others (mode %04o): anyone who can write it can add a token; chmod go-w %s", p, mode, p), err.Error())
	}
	p := write("# operators\n"+long1+"\n\n  "+long2+"  \n", 0o640)
	f, warnings, err := auth.LoadFile(p)
	require.NoError(t, err)
	assert.Empty(t, warnings, "group-readable is how a service group is given the file")
	assert.Equal(t, 2, f.Tokens())
	_, ok := f.Token(long2)
	assert.True(t, ok, "spaces around a token are not part of it")

	p = write("# operators\n"+long1+"\n  s3cret  \n"+long2[:15]+"\n", 0o644)
	f, warnings, err = auth.LoadFile(p)
	require.NoError(t, err)
	_, ok = f.Token("s3cret")
	assert.True(t, ok, "short tokens still work")
	assert.Equal(t, []string{
		fmt.Sprintf("%s is readable by others (mode 0644): every local user can read the tokens; chmod o-r %s", p, p),
		fmt.Sprintf("%s line 3: a token of 6 characters is easy to guess; use at least 16 random ones (e.g. openssl rand -hex 32)", p),
		fmt.Sprintf("%s line 4: a token of 15 characters is easy to guess; use at least 16 random ones (e.g. openssl rand -hex 32)", p),
	}, warnings)
	for _, w := range warnings {
		assert.NotContains(t, w, "s3cret")
		assert.NotContains(t, w, long2[:15])
	}
}

// An unnamed token is named after its line, so the name moves when lines
// above it come or go (a revoked token deleted): one that sees only its
// own jobs must be named, or a revocation would hand it another token's
// jobs.
func TestOwnJobsNeedAName(t *testing.T) {
	_, _, err := auth.Parse([]byte("# revoked: a line was here\n"+webToken+" ops=execute jobs=own\n"), "tokens")
	require.EqualError(t, err, "tokens line 2: jobs=own needs name=: without one the token is token#2, a name that follows its line and would go to another token when lines above it are added or removed")
	f, _, err := auth.Parse([]byte(legacy+"\n"+webToken+" name=ci jobs=own\ncert:alice jobs=own\n"), "tokens")
	require.NoError(t, err, "a cert: line is named after its certificate")
	id, ok := f.Cert([]string{"alice"})
	require.True(t, ok)
	assert.True(t, id.OwnJobs)
}

// A byte order mark is no part of the first token.
func TestByteOrderMark(t *testing.T) {
	f, _, err := auth.Parse([]byte("\ufeff"+legacy+"\n"), "tokens")
	require.NoError(t, err)
	_, ok := f.Token(legacy)
	assert.True(t, ok)
}

// A client certificate is known by its Common Name or a Subject
// Alternative Name; one whose names match two lines is refused, whichever
// line is more powerful.
func TestCertNamesMatchingTwoLinesAreRefused(t *testing.T) {
	f, _, err := auth.Parse([]byte("cert:alice ops=all\ncert:mallory ops=read\n"), "tokens")
	require.NoError(t, err)
	id, ok := f.Cert([]string{"mallory", "mallory.example"})
	require.True(t, ok)
	assert.Equal(t, "mallory", id.Name)
	id, ok = f.Cert([]string{"alice", "alice"})
	require.True(t, ok, "a CN repeated as a SAN is one name")
	assert.Equal(t, "alice", id.Name)
	for _, names := range [][]string{{"alice", "mallory"}, {"mallory", "alice"}} {
		id, err := f.CertIdentity(names)
		assert.Nil(t, id, names)
		assert.EqualError(t, err, fmt.Sprintf("client certificate matches more than one line of the credentials file (cert:%s, cert:%s): refused", names[0], names[1]))
		_, ok := f.Cert(names)
		assert.False(t, ok, names)
	}
	_, err = f.CertIdentity([]string{"bob"})
	assert.EqualError(t, err, "client certificate is not in the credentials file")
}
