package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Ended tells whether process pid has ended: no such process, or a zombie
// its (new) parent has yet to collect.
func Ended(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	state, _, ok := stat(pid)
	return !ok || state == "Z"
}

// Children lists the processes whose parent is pid.
func Children(t testing.TB, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := stat(n); ok && ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

// stat reads a process's state and parent from /proc/PID/stat.
func stat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// The command name (in parentheses) may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}

// Cmdline is a process's command line, space-separated.
func Cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// FreeAddr is a 127.0.0.1 address with a port free at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// RunWithBinary is a TestMain for tests that run the main package in the
// current directory as a process: it builds it into a temporary
// directory, sets *binary to its path, runs the tests and removes it;
// it returns their exit code. A build that fails says why on stderr.
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunWithBinary(m, "exed", &binary)) }
func RunWithBinary(m *testing.M, name string, binary *string) int {
	dir, err := os.MkdirTemp("", name+"-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	*binary = filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", *binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
