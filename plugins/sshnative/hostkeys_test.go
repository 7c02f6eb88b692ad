package sshnative_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// execOn runs cmd on hosts of an inventory text with the given SSH
// options and returns the events by host.
func execOn(t *testing.T, invText string, opts sshnative.SSHOptions, cmd string, hosts ...string) map[string]exe.Event {
	t.Helper()
	x := newInvExec(t, invText, opts)
	return collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: cmd}, emit)
	})
}

func newInvExec(t *testing.T, invText string, opts sshnative.SSHOptions) *sshnative.Executor {
	t.Helper()
	return newCfgExec(t, invText, sshnative.Config{SSH: opts})
}

// newCfgExec is an executor for cfg on an inventory text, with no
// ssh_config unless cfg names one.
func newCfgExec(t *testing.T, invText string, cfg sshnative.Config) *sshnative.Executor {
	t.Helper()
	cfg.Inventory = parseInv(t, invText)
	if cfg.SSH.SSHConfig == "" {
		cfg.SSH.SSHConfig = "none"
	}
	cfg.SSH.NoAgent = cfg.SSH.NoAgent || os.Getenv("SSH_AUTH_SOCK") == ""
	x := newExec(t, cfg)
	t.Cleanup(func() { _ = x.Close() })
	return x
}

func parseInv(t *testing.T, text string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse(strings.NewReader(text), "hosts.ini")
	require.NoError(t, err)
	return inv
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// A stock sshd has rsa, ecdsa and ed25519 host keys; known_hosts often
// holds only the ed25519 one. The client must ask for the known type
// first, as OpenSSH does, and still refuse a key that really differs.
func TestHostKeyAlgorithmsFollowKnownHosts(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{HostKeyTypes: []string{"rsa", "ecdsa", "ed25519"}})
	dir := t.TempDir()
	inv := fmt.Sprintf("multi ansible_host=127.0.0.1 ansible_port=%d\n", s.Port)
	for _, typ := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256} {
		t.Run(typ, func(t *testing.T) {
			kh := writeFile(t, filepath.Join(dir, typ), s.KnownHostsLine(s.HostKeys[typ])+"\n")
			ev := execOn(t, inv, sshnative.SSHOptions{User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{kh}}, "echo ok", "multi")["multi"]
			require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
			assert.Equal(t, "ok\n", ev.Exec.Stdout)
		})
	}

	// Another ed25519 key for the host: a real mismatch, refused.
	other := sshtest.WriteKey(t, filepath.Join(dir, "other"), "ed25519")
	kh := writeFile(t, filepath.Join(dir, "wrong"), s.KnownHostsLine(other)+"\n")
	ev := execOn(t, inv, sshnative.SSHOptions{User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{kh}}, "echo ok", "multi")["multi"]
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Contains(t, ev.Msg, "host key mismatch for 127.0.0.1:")
}

// known_hosts may trust a host through a certificate authority
// (@cert-authority) and may revoke keys (@revoked).
func TestHostCertificatesAndRevokedKeys(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{HostCA: true})
	inv := fmt.Sprintf("certified ansible_host=127.0.0.1 ansible_port=%d\n", s.Port)
	opts := sshnative.SSHOptions{User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}}
	ev := execOn(t, inv, opts, "echo ok", "certified")["certified"]
	require.Equal(t, exe.HostChanged, ev.Status, "known_hosts holds only the CA: %s", ev.Msg)

	// The host key the certificate is for is revoked: refused.
	revoked := writeFile(t, filepath.Join(t.TempDir(), "revoked"), "@cert-authority "+s.KnownHostsLine(s.HostCA)+"\n@revoked "+
		knownhosts.Line([]string{"*"}, s.HostKey)+"\n")
	opts.KnownHosts = []string{revoked}
	ev = execOn(t, inv, opts, "echo ok", "certified")["certified"]
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Contains(t, ev.Msg, "is revoked: known_hosts has it in a @revoked line ("+revoked+":2)")

	// A plain host key that known_hosts both lists and revokes.
	plain := sshtest.Start(t, sshtest.Options{})
	inv = fmt.Sprintf("plain ansible_host=127.0.0.1 ansible_port=%d\n", plain.Port)
	both := writeFile(t, filepath.Join(t.TempDir(), "both"), plain.KnownHostsLine(plain.HostKey)+"\n@revoked "+
		knownhosts.Line([]string{"*"}, plain.HostKey)+"\n")
	ev = execOn(t, inv, sshnative.SSHOptions{User: plain.User, KeyFiles: []string{plain.ClientKey}, KnownHosts: []string{both}}, "echo ok", "plain")["plain"]
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Contains(t, ev.Msg, "is revoked")
}

// ssh_config's StrictHostKeyChecking and UserKnownHostsFile apply per
// host: accept-new trusts a new host and writes its key, but still refuses
// a changed one; no checks nothing.
func TestStrictHostKeyCheckingFromSSHConfig(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	wrong := writeFile(t, filepath.Join(dir, "wrong"), s.KnownHostsLine(sshtest.WriteKey(t, filepath.Join(dir, "other"), "ed25519"))+"\n")
	fresh := filepath.Join(dir, "sub", "fresh")
	block := func(name, known, strict string) string {
		return fmt.Sprintf("Host %s\n    HostName 127.0.0.1\n    Port %d\n    UserKnownHostsFile %s\n    StrictHostKeyChecking %s\n", name, s.Port, known, strict)
	}
	cfg := writeFile(t, filepath.Join(dir, "ssh_config"), block("unknown", filepath.Join(dir, "none"), "yes")+
		block("tofu", fresh, "accept-new")+block("changed", wrong, "accept-new")+block("unchecked", wrong, "no"))
	opts := sshnative.SSHOptions{SSHConfig: cfg, User: s.User, KeyFiles: []string{s.ClientKey}}
	evs := execOn(t, "unknown\ntofu\nchanged\nunchecked\n", opts, "echo ok", "unknown", "tofu", "changed", "unchecked")
	assert.Equal(t, exe.HostUnreachable, evs["unknown"].Status)
	assert.Equal(t, fmt.Sprintf("host key unknown: 127.0.0.1:%d is not in known_hosts", s.Port), evs["unknown"].Msg)
	assert.Equal(t, exe.HostChanged, evs["tofu"].Status, evs["tofu"].Msg)
	b, err := os.ReadFile(fresh)
	require.NoError(t, err)
	assert.Equal(t, s.KnownHostsLine(s.HostKey)+"\n", string(b), "accept-new writes the key as ssh does")
	assert.Equal(t, exe.HostUnreachable, evs["changed"].Status)
	assert.Contains(t, evs["changed"].Msg, "host key mismatch")
	assert.Equal(t, exe.HostChanged, evs["unchecked"].Status, evs["unchecked"].Msg)
}

// sshRun runs OpenSSH's ssh with a config file and returns its output and
// whether it succeeded.
func sshRun(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	ssh := testenv.NeedBinary(t, "ssh")
	out, err := exec.Command(ssh, append([]string{"-o", "BatchMode=yes"}, args...)...).CombinedOutput()
	return string(out), err == nil
}

// The host key is checked by the key exchange, before any login: a host
// whose key changed says so even when no client key can be used (here a
// passphrase-protected one), as ssh does.
func TestHostKeyMismatchWinsOverNoUsableKey(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	encrypted := filepath.Join(dir, "encrypted")
	sshtest.WriteEncryptedKey(t, encrypted, "secret passphrase")
	wrong := writeFile(t, filepath.Join(dir, "wrong"), s.KnownHostsLine(sshtest.WriteKey(t, filepath.Join(dir, "other"), "ed25519"))+"\n")
	inv := fmt.Sprintf("changed ansible_host=127.0.0.1 ansible_port=%d ansible_ssh_private_key_file=%s\n", s.Port, encrypted)

	out, ok := sshRun(t, "-F", "none", "-o", "IdentitiesOnly=yes", "-i", encrypted, "-o", "UserKnownHostsFile="+wrong,
		"-p", fmt.Sprint(s.Port), "-l", s.User, "127.0.0.1", "true")
	require.False(t, ok)
	require.Contains(t, out, "REMOTE HOST IDENTIFICATION HAS CHANGED", "ssh reports the host key first")
	ev := execOn(t, inv, sshnative.SSHOptions{User: s.User, KnownHosts: []string{wrong}, NoAgent: true}, "echo ok", "changed")["changed"]
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Contains(t, ev.Msg, "host key mismatch for 127.0.0.1:")

	// The right host key: then the missing key is the cause.
	out, ok = sshRun(t, "-F", "none", "-o", "IdentitiesOnly=yes", "-i", encrypted, "-o", "UserKnownHostsFile="+s.KnownHosts,
		"-p", fmt.Sprint(s.Port), "-l", s.User, "127.0.0.1", "true")
	require.False(t, ok)
	require.Contains(t, out, "Permission denied")
	ev = execOn(t, inv, sshnative.SSHOptions{User: s.User, KnownHosts: []string{s.KnownHosts}, NoAgent: true}, "echo ok", "changed")["changed"]
	assert.Equal(t, exe.HostUnreachable, ev.Status)
	assert.Contains(t, ev.Msg, fmt.Sprintf("authentication failed for %s@127.0.0.1:%d: no usable private key or ssh-agent key (no key could be offered; could not use: %s (passphrase-protected, and ssh-agent does not hold it))", s.User, s.Port, encrypted))
}

// StrictHostKeyChecking accept-new records the key ssh records: for a
// sshd with rsa, ecdsa and ed25519 keys the one ssh negotiates first
// (ed25519), under a hashed name when ssh_config says HashKnownHosts yes.
func TestAcceptNewWritesWhatSSHWrites(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{HostKeyTypes: []string{"rsa", "ecdsa", "ed25519"}})
	dir := t.TempDir()
	for _, hash := range []string{"yes", "no"} {
		t.Run("HashKnownHosts "+hash, func(t *testing.T) {
			config := func(known string) string {
				return writeFile(t, filepath.Join(dir, "config-"+filepath.Base(known)), fmt.Sprintf(
					"Host fresh\n    HostName 127.0.0.1\n    Port %d\n    StrictHostKeyChecking accept-new\n    UserKnownHostsFile %s\n    HashKnownHosts %s\n",
					s.Port, known, hash))
			}
			theirs := filepath.Join(dir, "ssh-"+hash)
			out, ok := sshRun(t, "-F", config(theirs), "-i", s.ClientKey, "-l", s.User, "fresh", "true")
			require.True(t, ok, out)
			ours := filepath.Join(dir, "exed-"+hash)
			ev := execOn(t, "fresh\n", sshnative.SSHOptions{SSHConfig: config(ours), User: s.User, KeyFiles: []string{s.ClientKey}}, "echo ok", "fresh")["fresh"]
			require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)

			var lines [2][]string
			for i, p := range []string{theirs, ours} {
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				lines[i] = strings.Fields(string(b))
				require.Len(t, lines[i], 3, "%s: one line: %s", p, b)
				// Whatever the salt, the name is the host's.
				cb, err := knownhosts.New(p)
				require.NoError(t, err)
				addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port}
				require.NoError(t, cb(fmt.Sprintf("127.0.0.1:%d", s.Port), addr, s.HostKeys[ssh.KeyAlgoED25519]), p)
			}
			assert.Equal(t, lines[0][1:], lines[1][1:], "the same key")
			assert.Equal(t, ssh.KeyAlgoED25519, lines[1][1])
			assert.Equal(t, strings.HasPrefix(lines[0][0], "|1|"), strings.HasPrefix(lines[1][0], "|1|"), "hashed alike: %s, %s", lines[0][0], lines[1][0])
			assert.Equal(t, hash == "yes", strings.HasPrefix(lines[1][0], "|1|"))
		})
	}
}
