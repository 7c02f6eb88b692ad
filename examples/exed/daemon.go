package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// daemonEnv marks the re-executed child of -d; readyFD is the pipe on which
// it tells the parent it is serving (or why it is not).
const (
	daemonEnv = "EXED_DAEMON_CHILD"
	readyFD   = 3
)

// startDaemon re-executes exed in a new session, detached from the terminal,
// and waits until the child reports that it is listening, so that "exed -d"
// fails loudly when the server cannot start.
func startDaemon(args []string, stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "exed: cannot find own executable:", err)
		return exitFailure
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(stderr, "exed:", err)
		return exitFailure
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(stderr, "exed:", err)
		return exitFailure
	}
	defer devnull.Close()
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "exed: cannot start daemon:", err)
		return exitFailure
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	r.Close()
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(line, "ok "); ok {
		fmt.Fprintf(stdout, "exed started as daemon, pid %d, listening on %s\n", cmd.Process.Pid, rest)
		_ = cmd.Process.Release()
		return 0
	}
	if line == "" {
		line = "the daemon exited before it was ready"
	}
	fmt.Fprintln(stderr, "exed:", line)
	_ = cmd.Wait()
	return exitFailure
}

// notifyReady tells a waiting parent (in daemon mode) the outcome of start-up.
func notifyReady(msg string) {
	if os.Getenv(daemonEnv) == "" {
		return
	}
	f := os.NewFile(readyFD, "ready")
	if f == nil {
		return
	}
	_, _ = f.WriteString(msg + "\n")
	_ = f.Close()
}

// pidFile writes the pid file atomically and refuses to overwrite the file
// of a running process.
func writePidFile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() {
			if syscall.Kill(pid, 0) == nil {
				return fmt.Errorf("pid file %s names a running process (%d): is exed already running?", path, pid)
			}
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".exed-pid-*")
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// removePidFile removes the pid file if it is still ours.
func removePidFile(path string) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}
