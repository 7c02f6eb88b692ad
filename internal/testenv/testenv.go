// Package testenv decides what tests do when something they need from the
// machine (a binary, root, a service) is missing: skip with a clear message
// locally, but fail when EXE_REQUIRE_INTEGRATION=1 (set by make test and CI),
// so that CI can never pass by skipping. It also waits for what such real
// processes report (WaitPIDFile).
package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Required reports whether missing integration prerequisites are failures.
func Required() bool { return os.Getenv("EXE_REQUIRE_INTEGRATION") == "1" }

// Need skips (or, under EXE_REQUIRE_INTEGRATION=1, fails) t unless ok.
func Need(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if Required() {
		t.Fatalf("integration prerequisite missing: %s (EXE_REQUIRE_INTEGRATION=1)", what)
	}
	t.Skipf("integration prerequisite missing, skipping: %s (set EXE_REQUIRE_INTEGRATION=1 to fail instead)", what)
}

// NeedRoot needs the test to run as root.
func NeedRoot(t testing.TB) { t.Helper(); Need(t, os.Geteuid() == 0, "running as root") }

// NeedBinary needs an executable on PATH (or at an absolute path) and
// returns its path.
func NeedBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, err == nil, "the "+name+" binary")
	return p
}

// WaitPIDFile waits until path holds a process ID ending in a newline (a
// test command writes its pid there) and returns it; the test fails after
// timeout.
func WaitPIDFile(t testing.TB, path string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s after %v", path, timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a file another process writes
	}
}
