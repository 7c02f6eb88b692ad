package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/internal/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every command has its --help, and exits 0 with it.
func TestHelpForEveryCommand(t *testing.T) {
	s := &server{url: "http://127.0.0.1:1", dir: t.TempDir()}
	for _, cmd := range []string{"", "hosts", "ping", "facts", "run", "service", "deploy", "task", "tasks",
		"jobs", "job", "cancel", "delete", "completion", "completion bash"} {
		args := append(strings.Fields(cmd), "--help")
		r := s.exectl(t, nil, args...)
		assert.Equal(t, 0, r.code, "%s: %s", cmd, r.stderr)
		assert.Contains(t, r.stdout, "Usage:", cmd)
		assert.Contains(t, r.stdout, "exectl "+cmd, cmd)
		assert.Empty(t, r.stderr, cmd)
	}
	r := s.exectl(t, nil, "help", "deploy")
	assert.Contains(t, r.stdout, "-e, --extra-vars")
	assert.Contains(t, r.stdout, "-t, --tags")
}

// exectl completion bash is a script bash completes the command line
// with: commands, flag values, and, from the server, hosts and jobs.
func TestBashCompletion(t *testing.T) {
	bash := testenv.NeedBinary(t, "bash")
	// cobra's script uses the bash-completion package's helpers, as
	// interactive shells on Debian load them.
	const helpers = "/usr/share/bash-completion/bash_completion"
	_, statErr := os.Stat(helpers)
	testenv.Need(t, statErr == nil, "Debian's bash-completion package ("+helpers+")")
	s := startServer(t, "", "")
	jid, err := s.client(t).SubmitPing(t.Context(), "h1")
	require.NoError(t, err)
	r := s.exectl(t, nil, "completion", "bash")
	require.Equal(t, 0, r.code, r.stderr)
	script := filepath.Join(t.TempDir(), "exectl.bash")
	require.NoError(t, os.WriteFile(script, []byte(r.stdout), 0o644))
	zsh := s.exectl(t, nil, "completion", "zsh")
	require.Equal(t, 0, zsh.code)
	assert.Contains(t, zsh.stdout, "#compdef exectl")

	complete := func(line string) []string {
		t.Helper()
		// As bash calls the completion function for a line typed so far,
		// with exectl found on PATH.
		prog := fmt.Sprintf(`source %s; source %s
COMP_LINE=%q; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
__start_exectl exectl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%%s\n' "${COMPREPLY[@]}"`, helpers, script, line)
		cmd := exec.Command(bash, "--norc", "-c", prog)
		cmd.Env = append(baseEnv(), "EXED_URL="+s.url, "PATH="+filepath.Dir(exectlBin)+":"+os.Getenv("PATH"))
		// Its stderr only says that compopt (the no-space option) needs
		// bash's own completion loop around it.
		out, err := cmd.Output()
		require.NoError(t, err, string(out))
		return strings.Fields(string(out))
	}
	assert.Equal(t, []string{"run"}, complete("exectl ru"))
	assert.Equal(t, []string{"h1", "h2"}, complete("exectl ping h"))
	assert.Equal(t, []string{"down,h1", "down,h2"}, complete("exectl run down,h"))
	// bash breaks words at ":", so the word completed is the part after it.
	assert.Equal(t, []string{"h1", "h2"}, complete("exectl run web*:h"))
	assert.ElementsMatch(t, []string{"reloaded", "restarted"}, complete("exectl service h1 nginx --state re"))
	assert.Equal(t, []string{"pingwave", "rollingrestart"}, complete("exectl task "))
	assert.Equal(t, []string{"down", "h1", "h2"}, complete("exectl task pingwave "))
	assert.Contains(t, complete("exectl cancel "), jid)
}

// A job started elsewhere is followed from its first event to its end;
// --timeout is the job's timeout: the server stops the command.
func TestFollowAJobAndTimeout(t *testing.T) {
	s := startServer(t, "", "")
	c := s.client(t)
	dir := t.TempDir()
	jid, err := c.SubmitExecute(t.Context(), []string{"h1", "h2"}, gated(dir))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go1"), nil, 0o644))
	// h1 has ended before the follow begins; h2 ends while it runs.
	require.Eventually(t, func() bool {
		job, err := c.Job(t.Context(), jid, true)
		return err == nil && len(job.ReturnData["h1"]) == 1
	}, 60*time.Second, 10*time.Millisecond)
	done := make(chan result, 1)
	go func() { done <- s.exectl(t, nil, "job", jid, "--follow") }()
	// h2 ends while exectl starts or follows: either way it shows both
	// hosts, from the first event.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go2"), nil, 0o644))
	r := <-done
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "h1 | CHANGED | rc=0 >>\nhost 1\nh2 | CHANGED | rc=0 >>\nhost 2\n", r.stdout)

	start := time.Now()
	pidFile := filepath.Join(dir, "pid")
	r = s.exectl(t, nil, "run", "h1", "--timeout", "1.5", "--", "echo started; echo $$ > "+pidFile+"; exec sleep 300")
	assert.Equal(t, exitHostsFailed, r.code)
	assert.Equal(t, "h1 | FAILED | rc=-1 >>\nstarted\ncommand timed out\n", r.stdout)
	assert.Regexp(t, `^exectl: job \S+ ended Failure: timed out after 1.5 seconds\n$`, r.stderr)
	assert.Less(t, time.Since(start), 60*time.Second)
	canary := testenv.WaitPIDFile(t, pidFile, time.Second)
	require.Eventually(t, func() bool { return testenv.Ended(canary) }, 30*time.Second, 10*time.Millisecond)
	r = s.exectl(t, nil, "--json", "jobs")
	assert.Contains(t, strings.SplitN(r.stdout, "\n", 2)[0], `"timeout":1.5`, "the job carries its timeout")
}

// With a token file, exectl sends --token or EXED_TOKEN; without, the
// server's 401 is an error (exit 1).
func TestToken(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("0123456789abcdef-operator\n"), 0o600))
	s := startServer(t, "auth_token_file = "+tokens, "")
	r := s.exectl(t, nil, "hosts", "h1")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "exectl: missing or invalid bearer token (HTTP 401)\n", r.stderr)
	r = s.exectl(t, []string{"EXED_TOKEN=0123456789abcdef-operator"}, "ping", "h1")
	assert.Equal(t, 0, r.code, r.stderr)
	r = s.exectl(t, []string{"EXED_TOKEN=wrong"}, "--token", "0123456789abcdef-operator", "hosts", "h1")
	assert.Equal(t, 0, r.code, "the flag wins over the environment: %s", r.stderr)
}

// Over HTTPS with mutual TLS: --ca-file trusts the server, --cert and
// --key authenticate, and the job's user is the certificate's name.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir)
	serverCert, serverKey := ca.issue(t, "server", true)
	clientCert, clientKey := ca.issue(t, "deployer", false)
	s := startServer(t, fmt.Sprintf("tls_cert = %s\ntls_key = %s\ntls_client_ca = %s", serverCert, serverKey, ca.file), "")
	s.url = strings.Replace(s.url, "http://", "https://", 1)

	r := s.exectl(t, nil, "--ca-file", ca.file, "--cert", clientCert, "--key", clientKey, "ping", "h1")
	require.Equal(t, 0, r.code, r.stderr)
	r = s.exectl(t, []string{"EXED_CA_FILE=" + ca.file, "EXED_CERT=" + clientCert, "EXED_KEY=" + clientKey}, "--json", "jobs")
	require.Equal(t, 0, r.code, r.stderr)
	var job exe.Job
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &job))
	assert.Equal(t, "deployer", job.User)

	r = s.exectl(t, nil, "--ca-file", ca.file, "hosts")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "(HTTP 401)")
	r = s.exectl(t, nil, "hosts")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "certificate signed by unknown authority")
	r = s.exectl(t, nil, "--cert", clientCert, "hosts")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--cert and --key go together")
}

// ca is a test certificate authority, with its certificate in file.
type ca struct {
	*testpki.CA
	file string
	dir  string
}

func newCA(t *testing.T, dir string) *ca {
	t.Helper()
	c := &ca{CA: testpki.NewCA(t, "exectl test CA"), file: filepath.Join(dir, "ca.pem"), dir: dir}
	require.NoError(t, os.WriteFile(c.file, c.PEM(), 0o600))
	return c
}

// issue writes a certificate for name, and its key, signed by the CA: a
// server one for 127.0.0.1, or a client one.
func (c *ca) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	var cert tls.Certificate
	if server {
		cert = c.Server(t)
	} else {
		cert = c.Client(t, name)
	}
	certFile, keyFile = filepath.Join(c.dir, name+".pem"), filepath.Join(c.dir, name+".key")
	testpki.WriteFiles(t, cert, certFile, keyFile)
	return certFile, keyFile
}

// facts and service print each host's event as JSON; delete removes a
// finished job. (Their output depends on the machine, so no golden file.)
func TestFactsServiceDelete(t *testing.T) {
	s := startServer(t, "", "")
	r := s.exectl(t, nil, "facts", "h1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "h1 | SUCCESS => {\n    \"facts\": {"), r.stdout)
	r = s.exectl(t, nil, "--json", "facts", "h*")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, "the job, two events, the final job")
	var ev map[string]exe.Event
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &ev))
	assert.NotEmpty(t, ev["h1"].Facts)

	// A service that does not exist: the host FAILED! with the reason.
	r = s.exectl(t, nil, "service", "h2", "exe-no-such-service", "--state", "restarted")
	assert.Equal(t, exitHostsFailed, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "h2 | FAILED! => {\n    \"msg\": "), r.stdout)
	var job exe.Job
	r = s.exectl(t, nil, "--json", "jobs")
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &job))
	assert.Equal(t, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceRestarted}, job.Service)
	r = s.exectl(t, nil, "service", "h2", "exe-no-such-service", "--state", "reloaded")
	assert.Equal(t, exitHostsFailed, r.code)
	r = s.exectl(t, nil, "--json", "jobs")
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &job))
	assert.Equal(t, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceRestarted, Graceful: true}, job.Service, "reloaded is a graceful restart")

	r = s.exectl(t, nil, "delete", job.JID)
	assert.Equal(t, 0, r.code, r.stderr)
	r = s.exectl(t, nil, "job", job.JID)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "exectl: no such job (HTTP 404)\n", r.stderr)
}
