package sshnative

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/0ops/exed/inventory"
	"golang.org/x/crypto/ssh"
)

// unreachableError marks a failure to reach the host (dial, handshake,
// lost connection), reported as UNREACHABLE rather than FAILED.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// pidMarker starts the line a remote command prints first on stderr: the
// process ID of the login shell that runs it. sshd makes that shell a
// session leader, so the ID names the command's whole process group, and a
// cancel stops the group (stopScript) from a second session on the same
// connection.
// That costs the command nothing on the host (no extra process, no watcher)
// and works for every login user: sshd refuses signal requests for root.
const pidMarker = "__exe_pid__="

// mayStillRun ends the message of a command exed lost contact with.
const mayStillRun = "the remote command may still be running"

// maxCommandBytes is what Linux accepts as one argument (the command line
// sshd hands to the login shell as `shell -c line`).
const maxCommandBytes = 128<<10 - 1

// shellQuote quotes s for a POSIX shell: the only way request data reaches
// a remote command line.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// remoteCommand is the command line sent over the session. The login shell
// evaluates it, as for plain ssh, Ansible's raw module and parallel-ssh, so
// it must be a POSIX shell; posix false (ansible_shell_type other than sh)
// starts /bin/sh for it instead. The script's arguments and environment are
// quoted data; the script itself is a fixed one of exed's, a role script or
// the request's command, quoted and evaluated as sh -c would run it.
func remoteCommand(c command, posix bool) string {
	if c.raw {
		return c.script
	}
	var b strings.Builder
	b.WriteString(`printf '` + pidMarker + `%d\n' "$$" >&2` + "\n")
	if c.runID != "" {
		b.WriteString(runIDExport(c.runID))
	}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		b.WriteString("export " + k + "=" + shellQuote(v) + "\n")
	}
	b.WriteString("set --")
	for _, a := range c.args {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\neval " + shellQuote(c.script))
	if !posix {
		return "exec /bin/sh -c " + shellQuote(b.String())
	}
	return b.String()
}

// sshConn runs commands on one host over its pooled connection.
type sshConn struct {
	pool  *pool
	host  *inventory.Host
	grace time.Duration // see Config.KillGrace
}

func (c sshConn) run(ctx context.Context, cmd command, limit int) (result, error) {
	line := remoteCommand(cmd, c.posixShell())
	if len(line) > maxCommandBytes {
		return result{}, fmt.Errorf("the remote command line is %d KiB, more than the %d KiB one argument can hold", len(line)>>10, maxCommandBytes>>10)
	}
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return result{}, &notStartedError{context.Cause(ctx)}
		}
		client, pc, err := c.pool.acquire(ctx, c.host)
		if err != nil {
			if ctx.Err() != nil {
				return result{}, &notStartedError{context.Cause(ctx)}
			}
			return result{}, &unreachableError{err}
		}
		sess, err := client.NewSession()
		if err != nil {
			// The server dropped a pooled connection: re-dial once.
			c.pool.drop(c.host.Name, pc, client)
			c.pool.release(c.host.Name, pc)
			if attempt == 0 && ctx.Err() == nil {
				continue
			}
			return result{}, &unreachableError{fmt.Errorf("ssh session: %v", err)}
		}
		res, err := runSession(ctx, client, sess, line, cmd, limit, c.grace, c.posixShell())
		c.pool.release(c.host.Name, pc)
		return res, err
	}
}

// posixShell tells whether the host's login shell evaluates POSIX sh, as
// Ansible assumes unless ansible_shell_type says otherwise.
func (c sshConn) posixShell() bool {
	t, _ := c.host.Vars["ansible_shell_type"].(string)
	return t == "" || t == "sh"
}

// hangupWait bounds the steps of a stop that do not depend on the grace:
// waiting for the command's pid, opening the stop session, and the
// command's session ending once its processes are gone.
const hangupWait = time.Second

// stopScript ends the command whose login shell is $1 as
// procgroup.StopSession does locally: sshd makes that shell a session
// leader, so $1 is its session and its process group. It signals that
// group and, where /proc shows them, every other group of the session that
// holds a process whose environment carries $3 (EXE_RUN_ID=<run id>:$1):
// commands that moved to a group of their own (GNU timeout, a
// setpgid(0, 0) child) end with the command, while a daemon it started
// in a session of its own (setsid) is left alone. SIGHUP, then SIGTERM
// once $2 tenths of a second have passed with such a process alive, then
// SIGKILL after as long again; SIGCONT after each so that a stopped
// process acts on it. A group left with zombies only (their parent died
// and init has not reaped them) has ended. A sleep that takes no
// fractions waits whole seconds. Exit status 1: something outlived
// SIGKILL by $2 tenths (or, without /proc, the group still answers).
const stopScript = `g=$1 n=$2 m=$3
groups() {
	if [ ! -r /proc/self/stat ]; then
		kill -s 0 -- "-$g" 2>/dev/null && echo "$g"
		return 0
	fi
	for d in /proc/[0-9]*; do
		{ read -r l < "$d/stat"; } 2>/dev/null || continue
		set -- ${l##*) }
		[ "$4" = "$g" ] && [ "$1" != Z ] || continue
		if [ "$3" != "$g" ]; then
			[ -n "$m" ] && grep -a -q -F "$m" "$d/environ" 2>/dev/null || continue
		fi
		echo "$3"
	done | sort -u
}
left=$(groups)
for s in HUP TERM KILL; do
	[ -n "$left" ] || exit 0
	for x in $left; do
		kill -s "$s" -- "-$x" 2>/dev/null && kill -s CONT -- "-$x" 2>/dev/null
	done
	i=0
	while :; do
		left=$(groups)
		[ -n "$left" ] || exit 0
		[ "$i" -ge "$n" ] && break
		if sleep 0.1 2>/dev/null; then i=$((i + 1)); else sleep 1; i=$((i + 10)); fi
	done
done
exit 1`

// stopError is the cause of an interrupted command whose processes could
// not be stopped for certain.
type stopError struct {
	cause  error
	reason string
}

func (e *stopError) Error() string { return e.cause.Error() + "; " + e.reason }
func (e *stopError) Unwrap() error { return e.cause }

func runSession(ctx context.Context, client *ssh.Client, sess *ssh.Session, line string, cmd command, limit int, grace time.Duration, posix bool) (result, error) {
	defer sess.Close()
	stdout, stderr := &capped{limit: limit}, &capped{limit: limit}
	pids := newPIDFilter(stderr)
	sess.Stdout, sess.Stderr = stdout, stderr
	if !cmd.raw {
		sess.Stderr = pids
	}
	sess.Stdin = cmd.stdin
	if err := sess.Start(line); err != nil {
		return result{}, &unreachableError{fmt.Errorf("ssh exec: %v", err)}
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	collect := func() result {
		pids.flush()
		return result{stdout: stdout.String(), stderr: stderr.String(), truncated: stdout.Truncated() || stderr.Truncated(),
			started: true}
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done: // it had ended: its result stands
			return sessionResult(err, collect())
		default:
		}
		cause := context.Cause(ctx)
		if !cmd.raw {
			if serr := stopRemote(client, pids, done, cmd.runID, grace, posix); serr != nil {
				cause = &stopError{cause: cause, reason: serr.Error()}
			}
		}
		select {
		case <-done:
		case <-time.After(hangupWait):
			// Closing the channel bounds the wait; the process group has
			// been stopped (or could not be).
			_ = sess.Close()
		}
		res := collect()
		res.rtc = -1
		return res, cause
	}
	return sessionResult(err, collect())
}

// sessionResult is the result of a command whose session ended by itself.
func sessionResult(err error, res result) (result, error) {
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exit):
		res.rtc = exit.ExitStatus()
		if exit.Signal() != "" && exit.ExitStatus() == 0 {
			res.rtc = -1
		}
		return res, nil
	case errors.As(err, &missing):
		res.rtc = -1
		return res, &unreachableError{errors.New("connection lost while the command ran; " + mayStillRun)}
	}
	res.rtc = -1
	return res, &unreachableError{fmt.Errorf("connection lost while the command ran (%v); %s", err, mayStillRun)}
}

// stopRemote stops the process group of an interrupted command with
// stopScript, run in a second session on the same connection, once the
// command has reported its pid (it does so first thing) or has ended. It
// says why when it could not.
func stopRemote(client *ssh.Client, pids *pidFilter, done chan error, runID string, grace time.Duration, posix bool) error {
	var pid int
	select {
	case pid = <-pids.pid:
	case err := <-done:
		done <- err // leave the result for the caller
		return nil
	case <-time.After(hangupWait):
		return errors.New("the command did not report its process ID, so it was not stopped; " + mayStillRun)
	}
	stop, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("no session to stop the command (%v); %s", err, mayStillRun)
	}
	defer stop.Close()
	tenths := int((grace + 99*time.Millisecond) / (100 * time.Millisecond))
	mark := ""
	if runID != "" {
		mark = runIDVar + "=" + runID + ":" + strconv.Itoa(pid)
	}
	line := remoteCommand(command{script: stopScript, args: []string{strconv.Itoa(pid), strconv.Itoa(tenths), mark}}, posix)
	ran := make(chan error, 1)
	go func() { ran <- stop.Run(line) }()
	select {
	case err := <-ran:
		var exit *ssh.ExitError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &exit) && exit.ExitStatus() == 1:
			return errors.New("a process of the command outlived SIGKILL; " + mayStillRun)
		}
		return fmt.Errorf("stopping the command failed (%v); %s", err, mayStillRun)
	case <-time.After(3*grace + 3*hangupWait):
		return errors.New("stopping the command did not finish; " + mayStillRun)
	}
}
