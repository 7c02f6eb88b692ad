package sshnative_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// A host's own key that cannot be used (missing, passphrase-protected)
// is skipped as ssh skips it: the other configured keys and ssh-agent's
// are tried, and a failed login says which keys were tried.
func TestKeyFallback(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	encrypted := filepath.Join(dir, "encrypted")
	encPub, encPriv := sshtest.WriteEncryptedKey(t, encrypted, "secret passphrase")
	s.Authorize(t, encPub)
	stranger := filepath.Join(dir, "stranger")
	sshtest.WriteKey(t, stranger, "ed25519") // not authorized
	missing := filepath.Join(dir, "missing")

	line := func(name, key string) string {
		return fmt.Sprintf("%s ansible_host=127.0.0.1 ansible_port=%d ansible_ssh_private_key_file=%s\n", name, s.Port, key)
	}
	inv := line("missing", missing) + line("encrypted", encrypted)
	opts := sshnative.SSHOptions{User: s.User, KnownHosts: []string{s.KnownHosts}, NoAgent: true}

	// The configured keys take over.
	opts.KeyFiles = []string{s.ClientKey}
	evs := execOn(t, inv, opts, "echo ok", "missing", "encrypted")
	for _, h := range []string{"missing", "encrypted"} {
		require.Equal(t, exe.HostChanged, evs[h].Status, "%s: %s", h, evs[h].Msg)
	}

	// ssh-agent holds the encrypted key: it is used through the agent.
	t.Setenv("SSH_AUTH_SOCK", sshtest.Agent(t, encPriv))
	opts.KeyFiles, opts.NoAgent = nil, false
	ev := execOn(t, inv, opts, "echo ok", "encrypted")["encrypted"]
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	ev = execOn(t, inv, opts, "echo ok", "missing")["missing"]
	require.Equal(t, exe.HostChanged, ev.Status, "the agent's keys after the host's: %s", ev.Msg)

	// Nothing that works: the message names what was tried and what
	// could not be used.
	opts.KeyFiles, opts.NoAgent = []string{stranger}, true
	evs = execOn(t, inv, opts, "echo ok", "missing", "encrypted")
	assert.Equal(t, exe.HostUnreachable, evs["missing"].Status)
	assert.Contains(t, evs["missing"].Msg, fmt.Sprintf("authentication failed for %s@127.0.0.1:%d; keys tried: %s; could not use: %s (no such file)",
		s.User, s.Port, stranger, missing))
	assert.Equal(t, exe.HostUnreachable, evs["encrypted"].Status)
	assert.Contains(t, evs["encrypted"].Msg, "keys tried: "+stranger+"; could not use: "+encrypted+" (passphrase-protected, and ssh-agent does not hold it)")
}

// ssh reads its identity files for every connection: a key file replaced
// by a new key (rotation, the old one no longer authorized) is used from
// the next connection on, and a key file removed is no longer used.
func TestRotatedClientKeyUsedAtOnce(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	key := filepath.Join(t.TempDir(), "id_ed25519")
	b, err := os.ReadFile(s.ClientKey)
	require.NoError(t, err)
	writeFile(t, key, string(b))
	inv := ""
	for _, h := range []string{"a", "b", "c"} {
		inv += fmt.Sprintf("%s ansible_host=127.0.0.1 ansible_port=%d\n", h, s.Port)
	}
	x := newCfgExec(t, inv, sshnative.Config{SSH: sshnative.SSHOptions{
		User: s.User, KeyFiles: []string{key}, KnownHosts: []string{s.KnownHosts}, NoAgent: true}})
	run := func(host string) exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return x.Execute(context.Background(), []string{host}, exe.ExecuteArgs{Cmd: "echo ok"}, emit)
		})[host]
	}
	ev := run("a")
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)

	// The key rotated: a new one in the same file, the only one sshd
	// accepts now.
	pub := sshtest.WriteKey(t, key, "ed25519")
	writeFile(t, filepath.Join(s.Dir, "authorized_keys"), string(ssh.MarshalAuthorizedKey(pub)))
	ev = run("b")
	require.Equal(t, exe.HostChanged, ev.Status, "b, a new connection, logs in with the new key: %s", ev.Msg)

	require.NoError(t, os.Remove(key))
	ev = run("c")
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Equal(t, fmt.Sprintf("authentication failed for %s@127.0.0.1:%d: no usable private key or ssh-agent key (no key could be offered; could not use: %s (no such file))", s.User, s.Port, key), ev.Msg)
}
