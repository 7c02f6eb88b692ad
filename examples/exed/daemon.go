package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/0ops/exed/examples/exed/internal/config"
)

// daemonEnv marks the re-executed child of -d; readyFD is the pipe on which
// it tells the parent it is serving (or why it is not).
const (
	daemonEnv = "EXED_DAEMON_CHILD"
	readyFD   = 3
)

// daemonLogName is the daemon's log beside its pid file when [log]
// error_log is not set.
const daemonLogName = "exed.log"

// daemonLog is where a daemon logs: [log] error_log, else exed.log in the
// pid file's directory. A daemon has no terminal, so with neither it
// refuses to start rather than log to nowhere.
func daemonLog(cfg *config.Config) (string, error) {
	if cfg.Log.ErrorLog != "" && cfg.Log.ErrorLog != "-" {
		return cfg.Log.ErrorLog, nil
	}
	if cfg.API.PidFile == "" {
		return "", errors.New("-d: a daemon has no terminal to log to: set [log] error_log, or [api] pid_file to log to " +
			daemonLogName + " beside it")
	}
	dir, err := filepath.Abs(filepath.Dir(cfg.API.PidFile))
	if err != nil {
		return "", fmt.Errorf("-d: [api] pid_file: %v", err)
	}
	return filepath.Join(dir, daemonLogName), nil
}

// startDaemon re-executes exed in a new session, detached from the terminal,
// and waits until the child reports that it is listening, so that "exed -d"
// fails loudly when the server cannot start. The child's standard output
// and error are its log file (logPath): what goes there by default (the
// access log when [log] access_log is not set) and what the Go runtime
// writes (a crash's stack) are kept, not discarded.
func startDaemon(args []string, logPath string, stdout, stderr io.Writer) int {
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
	devnull, err := os.OpenFile(os.DevNull, os.O_RDONLY, 0)
	if err != nil {
		fmt.Fprintln(stderr, "exed:", err)
		return exitFailure
	}
	defer devnull.Close()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		fmt.Fprintln(stderr, "exed: [log] error_log:", err)
		return exitUsage
	}
	defer logFile.Close()
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logFile, logFile
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
		fmt.Fprintf(stdout, "exed started as daemon, pid %d, listening on %s, logging to %s\n", cmd.Process.Pid, rest, logPath)
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
