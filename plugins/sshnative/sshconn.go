package sshnative

import (
	"context"
	"errors"
	"fmt"
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
// cancel hangs the group up from a second session on the same connection.
// That costs the command nothing on the host (no extra process, no watcher)
// and works for every login user: sshd refuses signal requests for root.
const pidMarker = "__exe_pid__="

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
	pool *pool
	host *inventory.Host
}

func (c sshConn) run(ctx context.Context, cmd command, limit int) (result, error) {
	line := remoteCommand(cmd, c.posixShell())
	if len(line) > maxCommandBytes {
		return result{}, fmt.Errorf("the remote command line is %d KiB, more than the %d KiB one argument can hold", len(line)>>10, maxCommandBytes>>10)
	}
	for attempt := 0; ; attempt++ {
		client, pc, err := c.pool.acquire(ctx, c.host)
		if err != nil {
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
		res, err := runSession(ctx, client, sess, line, cmd, limit)
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

// hangupWait bounds each step of a cancel: waiting for the command's pid,
// the kill session, and the command's end after the hangup.
const hangupWait = time.Second

func runSession(ctx context.Context, client *ssh.Client, sess *ssh.Session, line string, cmd command, limit int) (result, error) {
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
		return result{stdout: stdout.String(), stderr: stderr.String(), truncated: stdout.Truncated() || stderr.Truncated()}
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		if !cmd.raw {
			hangup(client, pids, done)
		}
		select {
		case <-done:
		case <-time.After(hangupWait):
			// Closing the channel bounds the wait; the process group has
			// had its SIGHUP.
			_ = sess.Close()
		}
		res := collect()
		res.rtc = -1
		return res, ctx.Err()
	}
	res := collect()
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
		return res, &unreachableError{errors.New("connection lost while the command ran")}
	}
	res.rtc = -1
	return res, &unreachableError{fmt.Errorf("connection lost while the command ran: %v", err)}
}

// hangup sends SIGHUP to the process group of a cancelled command, from a
// second session on the same connection, once the command has reported its
// pid (it does so first thing) or has ended.
func hangup(client *ssh.Client, pids *pidFilter, done chan error) {
	var pid int
	select {
	case pid = <-pids.pid:
	case err := <-done:
		done <- err // leave the result for the caller
		return
	case <-time.After(hangupWait):
		return
	}
	kill, err := client.NewSession()
	if err != nil {
		return
	}
	defer kill.Close()
	ran := make(chan struct{})
	go func() {
		_ = kill.Run(fmt.Sprintf("kill -s HUP -- -%d", pid))
		close(ran)
	}()
	select {
	case <-ran:
	case <-time.After(hangupWait):
	}
}
