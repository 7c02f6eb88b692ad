package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/client"
	"github.com/stretchr/testify/require"
)

// The binaries the tests run as a person does: exectl, the exed server,
// and the example task plugin the server loads from its modules.
var exectlBin, exedBin, modulesDir string

func TestMain(m *testing.M) { os.Exit(buildAndRun(m)) }

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "exectl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	exectlBin, exedBin, modulesDir = filepath.Join(dir, "exectl"), filepath.Join(dir, "exed"), filepath.Join(dir, "modules")
	for _, b := range [][2]string{
		{exectlBin, "."},
		{exedBin, "../exed"},
		{filepath.Join(modulesDir, "exe-task-pingwave"), "../plugins/exe-task-pingwave"},
	} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b[1], err, out)
			return 1
		}
	}
	return m.Run()
}

// server is an exed the test started, on an inventory of two hosts
// with a local connection (h1, h2) and one that refuses connections
// (down: port 1 of 127.0.0.1), one host at a time so that output comes in
// target order, with a script role "web" and the pingwave task.
type server struct {
	url  string
	dir  string
	logs *logBuffer
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) add(s string) { b.mu.Lock(); b.buf.WriteString(s); b.mu.Unlock() }
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs exed with extra configuration lines added to its
// [api] (api) and [sshnative] (ssh) sections, and waits until it listens.
func startServer(t *testing.T, api, ssh string) *server {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), mode))
	}
	write("hosts.ini", "h1 ansible_connection=local\nh2 ansible_connection=local\ndown ansible_host=127.0.0.1 ansible_port=1\n", 0o644)
	write("roles/web/main.sh", "echo \"port=$EXE_VAR_PORT enabled=$EXE_VAR_ENABLED name=$EXE_VAR_NAME\"\n", 0o644)
	write("roles/web/tags/conf.sh", "echo conf; cat; echo\n", 0o644)
	write("roles/web/tags/broken.sh", "echo half-way; echo 'no such file' >&2; exit 4\n", 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	write("exed.conf", fmt.Sprintf(`[api]
listen_port = %d
%s
[runner]
concurrency = 1
modules = %s
state_dir = %s
[sshnative]
inventory = %s
roles = %s
%s
`, port, api, modulesDir, filepath.Join(dir, "state"), filepath.Join(dir, "hosts.ini"), filepath.Join(dir, "roles"), ssh), 0o600)

	cmd := exec.Command(exedBin, "-c", filepath.Join(dir, "exed.conf"))
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &server{dir: dir, logs: &logBuffer{}}
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.add(line + "\n")
			if _, addr, ok := strings.Cut(line, "exed listening: addr="); ok {
				select {
				case ready <- strings.Fields(addr)[0]:
				default:
				}
			}
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		// Only the exed this test started, by its PID; SIGTERM so that it
		// stops its plugins and commands.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	select {
	case addr := <-ready:
		s.url = "http://" + addr
	case err := <-done:
		t.Fatalf("exed exited before listening: %v\n%s", err, s.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("exed did not listen\n%s", s.logs)
	}
	return s
}

// client is a Go client of the server, to check what exectl did.
func (s *server) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(s.url)
	require.NoError(t, err)
	return c
}

// result is what a run of exectl printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

// exectl runs the binary off a terminal (stdout and stderr are pipes)
// with EXED_URL set to the server's and env added.
func (s *server) exectl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(exectlBin, args...)
	cmd.Dir = s.dir
	cmd.Env = append(baseEnv(), "EXED_URL="+s.url)
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// baseEnv is a clean environment: none of the caller's EXED_* or NO_COLOR.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8"}
}
