package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var binary string

// TestMain builds the exed binary once; the tests run it as operators do.
func TestMain(m *testing.M) { os.Exit(testenv.RunWithBinary(m, "exed", &binary)) }

// exitCode is the exit code of a command that must have failed.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the command must exit non-zero")
	return exit.ExitCode()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeConf(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "exed.conf")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// startOnInventory writes hosts, an INI inventory, to dir/hosts.ini and
// starts exed on it, with a free listen_port and extra (whole sections,
// neither [api] nor [sshnative]) in dir/exed.conf.
func startOnInventory(t *testing.T, dir, hosts, extra string) *proc {
	t.Helper()
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte(hosts), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n%s[sshnative]\ninventory = %s\n", freePort(t), extra, inv))
	return start(t, dir, "-c", conf)
}

// proc is a running exed started by a test.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
	logs *lockedBuffer
}

// lockedBuffer collects a process's log lines while tests read them.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// spawn runs exed with args in dir and waits for a log line containing
// marker; it returns the process and what follows the marker on that line.
func spawn(t *testing.T, dir, marker string, args ...string) (*proc, string) {
	t.Helper()
	return spawnEnv(t, dir, nil, marker, args...)
}

// spawnEnv is spawn with env added to the test's environment.
func spawnEnv(t *testing.T, dir string, env []string, marker string, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = io.Discard
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan error, 1), logs: &lockedBuffer{}}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if i := strings.Index(line, marker); i >= 0 {
				select {
				case ready <- line[i+len(marker):]:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	// After Wait, Kill signals nothing ("process already finished"), so
	// this only ever reaches the exed this test started.
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case rest := <-ready:
		return p, rest
	case err := <-p.done:
		t.Fatalf("exed %v exited before %q: %v\n%s", args, marker, err, p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("exed %v did not log %q\n%s", args, marker, p.logs)
	}
	return nil, ""
}

// start runs the server and waits until it listens.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p, rest := spawn(t, dir, "exed listening: addr=", args...)
	p.addr = strings.Fields(rest)[0]
	return p
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "exed must exit 0 on SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("exed did not stop on SIGTERM")
	}
}

func httpDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b
}

func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "exed.pid")
	accessLog := filepath.Join(dir, "access.log")
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
pid_file = "%s"
[log]
access_log = %s
[runner]
shutdown_grace = 2s
`, freePort(t), pidFile, accessLog))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(p.cmd.Process.Pid), strings.TrimSpace(string(b)))

	code, body := httpDo(t, "GET", base+"/target", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `["localhost"]`, string(body))
	code, body = httpDo(t, "GET", base+"/ping?target=localhost", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"localhost":{"status":1}}`, string(body))

	lines := followLines(t, base, post(t, base, "/execute", `{"targets":["localhost"],"cmd":"echo hi"}`))
	require.Len(t, lines, 3, "%q", lines)
	assert.JSONEq(t, `{"localhost":{"status":5,"rtc":0,"stdout":"hi\n","stderr":""}}`, lines[1])
	var final map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &final))
	assert.EqualValues(t, 0, final["state"])

	code, body = httpDo(t, "GET", base+"/nope", "")
	assert.Equal(t, 404, code)
	assert.JSONEq(t, `{"message":"no such endpoint: /nope"}`, string(body))

	p.stop(t)
	_, err = os.Stat(pidFile)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the pid file is removed on exit")
	log, err := os.ReadFile(accessLog)
	require.NoError(t, err)
	assert.Contains(t, string(log), `"GET /ping?target=localhost HTTP/1.1" 200`)
	assert.Contains(t, string(log), `"POST /execute HTTP/1.1" 201`)
	assert.Contains(t, p.logs.String(), "exed stopped")
}

func TestNoConfigServesDefault(t *testing.T) {
	p := start(t, t.TempDir())
	assert.Equal(t, "127.0.0.1:16808", p.addr, "the embedded default")
	code, body := httpDo(t, "GET", "http://"+p.addr+"/target", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `["localhost"]`, string(body))
	p.stop(t)
}

func TestDaemon(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "exed.pid")
	errLog := filepath.Join(dir, "error.log")
	port := freePort(t)
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\npid_file = %s\n[log]\nerror_log = %s\naccess_log = %s\n",
		port, pidFile, errLog, filepath.Join(dir, "access.log")))
	out, err := exec.Command(binary, "-d", "-c", conf).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), fmt.Sprintf("listening on 127.0.0.1:%d", port))

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err, "the daemon writes its pid file before reporting ready")
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	assert.Contains(t, string(out), fmt.Sprintf("pid %d", pid))

	code, _ := httpDo(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/healthz", port), "")
	assert.Equal(t, 200, code)

	// A second daemon on the same pid file refuses to start.
	out, err = exec.Command(binary, "-d", "-c", conf).CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "exed:")

	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) },
		30*time.Second, 20*time.Millisecond, "the daemon stops on SIGTERM")
	logText, err := os.ReadFile(errLog)
	require.NoError(t, err)
	assert.Contains(t, string(logText), "exed stopped")
	_, err = os.Stat(pidFile)
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

func TestBadConfigurationExits2(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	for text, want := range map[string]string{
		"[api]\nlisten_port = many\n":                     `[api] listen_port: "many" is not a port number`,
		"[api]\nlisten_addr = 0.0.0.0\nlisten_port = 1\n": "is not a loopback address: set auth_token_file",
		"[runner]\nexecutor = nosuch\n":                   `[runner] executor: no executor plugin "nosuch" (found: ansible, sshnative;`,
		"[api]\nauth_token_file = /nonexistent/tokens\n":  "[api] auth_token_file",
		"[sshnative]\nconnect_timeout = soon\n":           `[sshnative] connect_timeout: "soon" is not a duration`,
		"[log]\nlog_format = logfmt\n":                    `[log] log_format: "logfmt" is not a log format (text, json)`,
		// What configparser refuses, where exed once served: on the
		// default port with a warning (the first), or silently on the
		// last port given (the others).
		fmt.Sprintf("listen_port=%d\n", port):                                         "exed.conf:1: listen_port: option outside any section",
		fmt.Sprintf("[api]\nlisten_port = %d\nlisten_port = %d\n", port, port):        "exed.conf:3: [api] listen_port: repeated (first at line 2)",
		fmt.Sprintf("[api]\nlisten_port = %d\n[api]\nlisten_port = %d\n", port, port): "exed.conf:3: [api]: repeated (first at line 1)",
	} {
		code, out := refused(t, dir, "-c", writeConf(t, dir, text))
		assert.Equal(t, 2, code, text)
		assert.Contains(t, out, want, text)
	}
	code, out := refused(t, dir, "worker", "-c", writeConf(t, dir, "[log]\nlog_format = yaml\n"))
	assert.Equal(t, 2, code, "exed worker")
	assert.Contains(t, out, `[log] log_format: "yaml" is not a log format (text, json)`)
	code, out = refused(t, dir, "worker", "-c", writeConf(t, dir, "[log]\nlog_format = json\n[log]\nlog_format = yaml\n"))
	assert.Equal(t, 2, code, "exed worker")
	assert.Contains(t, out, "exed.conf:3: [log]: repeated (first at line 1)")
	code, out = refused(t, dir, "--bogus")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "Usage: exed")
}

// refused runs exed in dir, which must refuse to start, and returns its
// exit code and output. An exed that serves instead (it logs that it
// listens) fails the test and is stopped with SIGTERM, so that a test
// of a refusal never waits on a running server.
func refused(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	require.NoError(t, err)
	var out strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "exed listening") {
			t.Errorf("exed %v started instead of refusing", args)
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	err = cmd.Wait()
	if err == nil {
		t.Errorf("exed %v exited 0:\n%s", args, out.String())
		return 0, out.String()
	}
	return exitCode(t, err), out.String()
}

func TestUnknownOptionWarnsAndAuth(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("s3cret\n"), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\nauth_token_file = %s\nfrobnicate = 1\n[sshnative]\nfrobs = 2\n", freePort(t), tokens))
	p := start(t, dir, "-c", conf)
	assert.Contains(t, p.logs.String(), `unknown option "frobnicate" in [api] ignored`)
	// The plugin warns of its own options; its stderr reaches the log
	// through a pipe, so the line may follow "exed listening".
	assert.Eventually(t, func() bool {
		return strings.Contains(p.logs.String(), `unknown options in [sshnative] ignored: frobs`)
	}, 10*time.Second, 10*time.Millisecond, "the plugin warns of its own options")
	code, _ := httpDo(t, "GET", "http://"+p.addr+"/target", "")
	assert.Equal(t, 401, code)
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/target", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	assert.NotContains(t, p.logs.String(), "s3cret", "tokens are never logged")
	p.stop(t)
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(binary, "-v").Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "exed "), string(out))
	out, err = exec.Command(binary, "-h").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "-conf")
}

func TestInventoryPatterns(t *testing.T) {
	dir := t.TempDir()
	p := startOnInventory(t, dir, "[web]\nweb[01:04]\n[prod:children]\nweb\n[prod]\ndb01\n", "")
	code, body := httpDo(t, "GET", "http://"+p.addr+"/target?pattern=web*:%26prod:!web03", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `["web01","web02","web04"]`, string(body))
	code, body = httpDo(t, "GET", "http://"+p.addr+"/ping?target=web01&target=localhost", "")
	assert.Equal(t, 200, code)
	var out map[string]map[string]any
	require.NoError(t, json.Unmarshal(body, &out))
	assert.EqualValues(t, 1, out["localhost"]["status"], "localhost stays implicit")
	assert.EqualValues(t, 4, out["web01"]["status"])
	p.stop(t)

	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb[01:04\n"), 0o600))
	outText, err := exec.Command(binary, "-c", filepath.Join(dir, "exed.conf")).CombinedOutput()
	assert.Equal(t, 2, exitCode(t, err))
	assert.Contains(t, string(outText), "[sshnative] inventory: "+inv+":2: host \"web[01:04\": unterminated range")
}

// TestTargetsNamingLocalhostTwice: an inventory that lists no localhost
// has Ansible's implicit one, named localhost, 127.0.0.1 or ::1; a
// request naming it by two of those names runs on it once, under the
// first name, as "ansible 'localhost,127.0.0.1'" does (one host,
// localhost), where it was refused with 404 naming a name that works alone.
func TestTargetsNamingLocalhostTwice(t *testing.T) {
	p := startOnInventory(t, t.TempDir(), "[web]\nweb[01:04]\n[boxes]\nsshbox ansible_connection=local\n", "")
	base := "http://" + p.addr
	for query, want := range map[string]string{
		"/ping?target=127.0.0.1":                                `{"127.0.0.1":{"status":1}}`,
		"/ping?target=localhost&target=127.0.0.1":               `{"localhost":{"status":1}}`,
		"/ping?target=127.0.0.1&target=localhost&target=::1":    `{"127.0.0.1":{"status":1}}`,
		"/ping?target=sshbox&target=127.0.0.1&target=localhost": `{"sshbox":{"status":1},"127.0.0.1":{"status":1}}`,
		"/target?pattern=localhost:127.0.0.1":                   `["localhost"]`,
	} {
		code, body := httpDo(t, "GET", base+query, "")
		assert.Equal(t, 200, code, query)
		assert.JSONEq(t, want, string(body), query)
	}
	lines := followLines(t, base, post(t, base, "/execute", `{"targets":["localhost","127.0.0.1"],"cmd":"echo hi"}`))
	require.Len(t, lines, 3, "the job, one host, the end: %q", lines)
	assert.JSONEq(t, `{"localhost":{"status":5,"rtc":0,"stdout":"hi\n","stderr":""}}`, lines[1])
	var final struct {
		State   int      `json:"state"`
		Targets []string `json:"targets"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &final))
	assert.Equal(t, 0, final.State)
	assert.Equal(t, []string{"localhost"}, final.Targets)
	p.stop(t)
}

func TestExecuteOverSSH(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"ListenAddress 127.0.0.2"}})
	dir := t.TempDir()
	// known_hosts trusts 127.0.0.1 but holds a wrong key for 127.0.0.2.
	kh, err := os.ReadFile(s.KnownHosts)
	require.NoError(t, err)
	other := sshtest.Start(t, sshtest.Options{})
	wrong, err := os.ReadFile(other.KnownHosts)
	require.NoError(t, err)
	wrongLine := strings.Replace(string(wrong), fmt.Sprintf("[127.0.0.1]:%d", other.Port), fmt.Sprintf("[127.0.0.2]:%d", s.Port), 1)
	khPath := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(khPath, append(kh, wrongLine...), 0o600))
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte(fmt.Sprintf(
		"[fleet]\nnode[01:50] ansible_host=127.0.0.1 ansible_port=%d\ntampered ansible_host=127.0.0.2 ansible_port=%d\n", s.Port, s.Port)), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
[runner]
concurrency = 51
[sshnative]
inventory = %s
known_hosts = %s
private_key_file = %s
remote_user = %s
use_agent = false
`, freePort(t), inv, khPath, s.ClientKey, s.User))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr

	targets := []string{"tampered"}
	for i := 1; i <= 50; i++ {
		targets = append(targets, fmt.Sprintf("node%02d", i))
	}
	body, _ := json.Marshal(map[string]any{"targets": targets, "cmd": "uname -a"})
	var job struct {
		State      int                         `json:"state"`
		Error      string                      `json:"error"`
		ReturnData map[string][]map[string]any `json:"return_data"`
	}
	submitInto(t, base, "/execute", string(body), &job)
	assert.Equal(t, 2, job.State)
	assert.Equal(t, "1 of 51 hosts failed", job.Error)
	require.Len(t, job.ReturnData, 51)
	for _, h := range targets[1:] {
		ev := job.ReturnData[h][0]
		assert.EqualValues(t, 5, ev["status"], "%s: %v", h, ev["msg"])
		assert.Contains(t, ev["stdout"], "Linux", h)
	}
	assert.EqualValues(t, 4, job.ReturnData["tampered"][0]["status"])
	assert.Contains(t, job.ReturnData["tampered"][0]["msg"], "host key mismatch")
	p.stop(t)
}

// exed -d without [log] error_log logs to exed.log beside the pid file:
// the server's log, the access log (access_log is not set either) and
// the job lines, from start to stop; nothing goes to nowhere.
func TestDaemonLogsBesidePidFile(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	require.NoError(t, os.Mkdir(run, 0o755))
	pidFile := filepath.Join(run, "exed.pid")
	port := freePort(t)
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\npid_file = %s\n[sshnative]\nfrobs = 1\n", port, pidFile))
	out, err := exec.Command(binary, "-d", "-c", conf).CombinedOutput()
	require.NoError(t, err, string(out))
	logPath := filepath.Join(run, "exed.log")
	assert.Contains(t, string(out), "logging to "+logPath, "the operator is told where")
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	jid := post(t, base, "/execute", `{"targets":["localhost"],"cmd":"echo hi"}`)
	assert.EqualValues(t, 0, follow(t, base, jid)["state"])
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) },
		30*time.Second, 20*time.Millisecond, "the daemon stops on SIGTERM")

	logText, err := os.ReadFile(logPath)
	require.NoError(t, err)
	for _, want := range []string{
		"exed listening: addr=127.0.0.1:",
		"[WARN]  exed.plugin.sshnative: unknown options in [sshnative] ignored: frobs", // a plugin's warning
		`"POST /execute HTTP/1.1" 201`,                                                 // the access log
		"exed.runner: job started: jid=" + jid,
		"exed.runner: job ended: jid=" + jid,
		"exed stopped",
	} {
		assert.Contains(t, string(logText), want)
	}
	st, err := os.Stat(logPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "not readable by others")
}

// exed -d with neither error_log nor pid_file has nowhere to log: it
// refuses to start, and says what to set.
func TestDaemonWithNowhereToLogRefuses(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n", port))
	out, err := exec.Command(binary, "-d", "-c", conf).CombinedOutput()
	assert.Equal(t, 2, exitCode(t, err))
	assert.Equal(t, "exed: -d: a daemon has no terminal to log to: set [log] error_log, or [api] pid_file to log to exed.log beside it\n", string(out))
	_, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	assert.Error(t, err, "nothing was started")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing but exed.conf was written")
}

// exed -d with a JSON log and no access_log warns that the access lines
// share its file.
func TestDaemonJSONLogWarnsOfAccessLines(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "exed.pid")
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\npid_file = %s\n[log]\nlog_format = json\n", freePort(t), pidFile))
	out, err := exec.Command(binary, "-d", "-c", conf).CombinedOutput()
	require.NoError(t, err, string(out))
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) },
		30*time.Second, 20*time.Millisecond, "the daemon stops on SIGTERM")
	logText, err := os.ReadFile(filepath.Join(dir, "exed.log"))
	require.NoError(t, err)
	warn := find(jsonLines(t, string(logText)), "-d: the access log goes to "+filepath.Join(dir, "exed.log")+
		" among the JSON lines of the server log: set [log] access_log to keep them apart", map[string]any{"@level": "warn"})
	assert.Len(t, warn, 1, string(logText))
}
