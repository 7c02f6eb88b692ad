package sshnative

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/0ops/exed/internal/procgroup"
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
	// runID, when set, names the command in the journal: the command
	// exports EXE_RUN_ID=<runID>:<its shell's pid> (runIDExport).
	runID string
}

// runIDExport is the shell line that marks a command's processes with its
// run ID and process group (the shell's $$, expanded by the shell), for
// scripts/reap.sh.
func runIDExport(id string) string {
	return "export " + runIDVar + "=" + id + ":$$\n"
}

// result is a finished command. rtc is -1 when the command was killed.
type result struct {
	rtc       int
	stdout    string
	stderr    string
	truncated bool
	// started tells that the command was started, whether or not it
	// ended.
	started bool
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

// localConn runs commands on this machine, each in a session of its own
// so that stopping reaches the whole tree, not just sh.
type localConn struct {
	grace time.Duration // see Config.KillGrace
}

func (lc localConn) run(ctx context.Context, c command, limit int) (result, error) {
	if ctx.Err() != nil {
		return result{}, &notStartedError{context.Cause(ctx)}
	}
	script := c.script
	if c.runID != "" {
		script = runIDExport(c.runID) + script
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "exe"}, c.args...)...)
	// Its shell leads a session of its own, as a login shell under sshd
	// does: stopping it reaches the groups its processes moved to, and the
	// session is how the reap script tells them from daemons.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
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
		return result{stdout: stdout.String(), stderr: stderr.String(), truncated: stdout.Truncated() || stderr.Truncated(),
			started: true}
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done: // it had ended: its result stands
			return localResult(cmd, err, collect())
		default:
		}
		mark := ""
		if c.runID != "" {
			mark = runIDVar + "=" + c.runID + ":" + strconv.Itoa(cmd.Process.Pid)
		}
		_, ended := procgroup.StopSession(cmd.Process.Pid, mark, lc.grace)
		<-done // every process of the command is gone; WaitDelay bounds the rest
		res := collect()
		res.rtc = -1
		if !ended {
			return res, &stopError{cause: context.Cause(ctx), reason: "a process of the command outlived SIGKILL; " + mayStillRun}
		}
		return res, context.Cause(ctx)
	}
	return localResult(cmd, err, collect())
}

// localResult is the result of a command that ended by itself.
func localResult(cmd *exec.Cmd, err error, res result) (result, error) {
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
