package sshnative

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// command is what a connection runs: a POSIX sh script with positional
// arguments, so that request fields travel as arguments, never as code.
type command struct {
	script string
	args   []string
	stdin  io.Reader
	env    []string // extra KEY=value pairs
	// raw runs script as the whole remote command, without the wrapper
	// that makes cancellation reach every process (ping's "true").
	raw bool
}

// result is a finished command. rtc is -1 when the command was killed.
type result struct {
	rtc       int
	stdout    string
	stderr    string
	truncated bool
}

// conn runs commands on one host. When ctx ends while the command runs,
// run stops its process group (see DefaultKillGrace) and returns what it
// printed so far with context.Cause(ctx); when ctx ends before the
// command started, it returns a *notStartedError.
type conn interface {
	run(ctx context.Context, cmd command, limit int) (result, error)
}

// notStartedError says a command was never started on the host: its
// context ended first (while waiting for a connection, say).
type notStartedError struct{ cause error }

func (e *notStartedError) Error() string { return "not started: " + e.cause.Error() }
func (e *notStartedError) Unwrap() error { return e.cause }

// localConn runs commands on this machine, in their own process group so
// that stopping reaches the whole tree, not just sh.
type localConn struct {
	grace time.Duration // see Config.KillGrace
}

func (lc localConn) run(ctx context.Context, c command, limit int) (result, error) {
	if ctx.Err() != nil {
		return result{}, &notStartedError{context.Cause(ctx)}
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", c.script, "exe"}, c.args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A process outside the group (a daemon an init script started) that
	// keeps stdout open must not hold us once sh has exited.
	cmd.WaitDelay = time.Second
	cmd.Stdin = c.stdin
	if len(c.env) > 0 {
		cmd.Env = append(cmd.Environ(), c.env...)
	}
	stdout, stderr := &capped{limit: limit}, &capped{limit: limit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	collect := func() result {
		return result{stdout: stdout.String(), stderr: stderr.String(), truncated: stdout.Truncated() || stderr.Truncated()}
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		stopGroup(cmd.Process.Pid, lc.grace)
		<-done // every process of the group is gone; WaitDelay bounds the rest
		res := collect()
		res.rtc = -1
		return res, context.Cause(ctx)
	}
	res := collect()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil:
		// sh exited but something it started (a daemon from an init script
		// that did not close its descriptors) still holds the output pipes.
		res.rtc = cmd.ProcessState.ExitCode()
		return res, nil
	case errors.As(err, &exit):
		res.rtc = exit.ExitCode()
		return res, nil
	}
	return res, err
}

// stopGroup ends the process group pgid as the remote stop script does
// (stopScript): SIGHUP, then SIGTERM once grace has passed with a process
// of the group still alive, then SIGKILL after another grace. Each signal
// is followed by SIGCONT so that a stopped process acts on it. It returns
// when the group is gone or has been sent SIGKILL.
func stopGroup(pgid int, grace time.Duration) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		if errors.Is(syscall.Kill(-pgid, sig), syscall.ESRCH) {
			return // nothing is left of the group
		}
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		if groupGone(pgid, grace) {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupGone waits up to d for the process group to have no process left
// and tells whether it has none. A zombie still counts until it is reaped:
// under an init that reaps late, a group that is in fact dead gets the
// next signals too, which costs time, not correctness.
func groupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		<-t.C
	}
}
