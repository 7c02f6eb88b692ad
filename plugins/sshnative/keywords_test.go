package sshnative_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// An ssh_config keyword that changes which host key ssh trusts or which
// client keys it offers, and that sshnative does not implement, makes the
// host UNREACHABLE with a message naming the keyword, the file and line,
// and what to do: ignored, it would make sshnative trust or offer what ssh
// would not. Nothing is dialled, nothing runs. The same file without the
// keyword (or with a value that changes nothing) reaches the host.
func TestHostSecurityKeywordsAreRefused(t *testing.T) {
	sshBin := testenv.NeedBinary(t, "ssh")
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	marks := s.WritableDir(t)
	// A RevokedHostKeys file listing the server's key: ssh refuses it.
	revoked := writeFile(t, filepath.Join(dir, "revoked"), "# revoked\n"+string(ssh.MarshalAuthorizedKey(s.HostKey)))
	base := func(extra string) string {
		return fmt.Sprintf("Host target\n    HostName %s\n    Port %d\n    User %s\n    IdentityFile %s\n    IdentitiesOnly yes\n    UserKnownHostsFile %s\n    GlobalKnownHostsFile /dev/null\n    BatchMode yes\n%s",
			s.Addr, s.Port, s.User, s.ClientKey, s.KnownHosts, extra)
	}
	const keywordLine = 10 // the line extra starts on in base
	run := func(t *testing.T, config, mark string) (exe.Event, string) {
		t.Helper()
		cfg := writeFile(t, filepath.Join(t.TempDir(), "ssh_config"), config)
		x := newCfgExec(t, "target\n", sshnative.Config{SSH: sshnative.SSHOptions{SSHConfig: cfg, NoAgent: true}})
		ev := collect(t, func(emit exe.Emit) error {
			return x.Execute(context.Background(), []string{"target"}, exe.ExecuteArgs{Cmd: "touch " + filepath.Join(marks, mark)}, emit)
		})["target"]
		return ev, cfg
	}
	// ssh -G prints the effective configuration: OpenSSH reads each line
	// as the keyword it is meant to be.
	sshG := func(t *testing.T, config string) string {
		t.Helper()
		cfg := writeFile(t, filepath.Join(t.TempDir(), "ssh_config"), config)
		out, err := exec.Command(sshBin, "-F", cfg, "-G", "target").CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}

	t.Run("without the keyword", func(t *testing.T) {
		ev, _ := run(t, base(""), "plain")
		require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
		assert.FileExists(t, filepath.Join(marks, "plain"))
	})

	for _, c := range []struct {
		keyword, value string
		sshG           string // the line ssh -G prints for it
	}{
		{"RevokedHostKeys", revoked, "revokedhostkeys " + revoked},
		{"KnownHostsCommand", "/bin/cat /dev/null", "knownhostscommand /bin/cat /dev/null"},
		{"CASignatureAlgorithms", "ssh-ed25519", "casignaturealgorithms ssh-ed25519"},
		{"HostKeyAlgorithms", "ecdsa-sha2-nistp256", "hostkeyalgorithms ecdsa-sha2-nistp256"},
		{"HostKeyAlgorithms", "-ssh-ed25519", "hostkeyalgorithms "},
		{"CheckHostIP", "yes", "checkhostip yes"},
		{"RequiredRSASize", "4096", "requiredrsasize 4096"},
		{"IdentityAgent", "none", "identityagent none"},
		{"PKCS11Provider", "/usr/lib/no-such-pkcs11.so", "pkcs11provider /usr/lib/no-such-pkcs11.so"},
		{"CertificateFile", filepath.Join(dir, "id-cert.pub"), "certificatefile " + filepath.Join(dir, "id-cert.pub")},
		{"PubkeyAuthentication", "no", "pubkeyauthentication false"},
	} {
		t.Run(c.keyword+" "+c.value, func(t *testing.T) {
			config := base(fmt.Sprintf("    %s %s\n", c.keyword, c.value))
			assert.Contains(t, sshG(t, config), "\n"+c.sshG)
			before := s.Connections()
			mark := strings.NewReplacer("/", "_", " ", "_").Replace(c.keyword + c.value)
			ev, cfg := run(t, config, mark)
			assert.Equal(t, exe.HostUnreachable, ev.Status)
			assert.Contains(t, ev.Msg, fmt.Sprintf("sshnative cannot apply %s %s (%s:%d; ", c.keyword, c.value, cfg, keywordLine))
			assert.Contains(t, ev.Msg, "not supported by the native SSH executor: use the ansible executor or remove it")
			assert.NoFileExists(t, filepath.Join(marks, mark), "nothing ran")
			assert.Equal(t, before, s.Connections(), "nothing was dialled")
		})
	}

	// ssh itself refuses the host whose key the RevokedHostKeys file
	// lists, and reaches it when the file lists another key.
	t.Run("ssh refuses a revoked key", func(t *testing.T) {
		cfg := writeFile(t, filepath.Join(t.TempDir(), "ssh_config"), base("    RevokedHostKeys "+revoked+"\n"))
		out, err := exec.Command(sshBin, "-F", cfg, "target", "true").CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), "revoked by file "+revoked)

		other := sshtest.WriteKey(t, filepath.Join(t.TempDir(), "other"), "ed25519")
		notListed := writeFile(t, filepath.Join(t.TempDir(), "revoked"), string(ssh.MarshalAuthorizedKey(other)))
		cfg = writeFile(t, filepath.Join(t.TempDir(), "ssh_config"), base("    RevokedHostKeys "+notListed+"\n"))
		out, err = exec.Command(sshBin, "-F", cfg, "target", "true").CombinedOutput()
		require.NoError(t, err, string(out))
	})

	// Values that change nothing sshnative does not do are not refused.
	for _, line := range []string{"RevokedHostKeys none", "KnownHostsCommand none", "HostKeyAlgorithms +ssh-rsa",
		"CheckHostIP no", "RequiredRSASize 1024", "IdentityAgent SSH_AUTH_SOCK", "PubkeyAuthentication yes"} {
		t.Run(line, func(t *testing.T) {
			mark := strings.ReplaceAll(line, " ", "_")
			ev, _ := run(t, base("    "+line+"\n"), mark)
			require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
			assert.FileExists(t, filepath.Join(marks, mark))
		})
	}
}
