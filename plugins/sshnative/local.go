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

// conn runs commands on one host.
type conn interface {
	run(ctx context.Context, cmd command, limit int) (result, error)
}

// localConn runs commands on this machine, in their own process group so
// that cancelling kills the whole tree, not just sh.
type localConn struct{}

func (localConn) run(ctx context.Context, c command, limit int) (result, error) {
	script := c.script
	if c.runID != "" {
		script = runIDExport(c.runID) + script
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "exe"}, c.args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps stdout open must not hold us after a kill.
	cmd.WaitDelay = time.Second
	cmd.Stdin = c.stdin
	if len(c.env) > 0 {
		cmd.Env = append(cmd.Environ(), c.env...)
	}
	stdout, stderr := &capped{limit: limit}, &capped{limit: limit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String(), truncated: stdout.Truncated() || stderr.Truncated(),
		started: cmd.Process != nil}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, ctx.Err()
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
