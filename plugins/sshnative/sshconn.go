package sshnative

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/0ops/exed/plugins/sshnative/inventory"
	"golang.org/x/crypto/ssh"
)

// unreachableError marks a failure to reach the host (dial, handshake,
// lost connection), reported as UNREACHABLE rather than FAILED.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// remoteWrapper runs the script ($0, with arguments "$@") so that a cancel
// reaches every process it started, for any login user: the session's stdin
// stays open while the command runs, and a watcher (a forked subshell
// blocked in the read builtin) waits for its EOF, which the client sends on
// cancel and sshd delivers when the connection dies, then hangs up the
// session's process group (sshd makes the command a session leader). The
// script runs in the wrapper itself (eval), and an EXIT trap stops the
// watcher when it ends, so a command costs one extra fork and no exec.
// Signal requests are not used: sshd refuses them for root logins. Input for
// the script comes from $EXE_STDIN, since stdin is the watcher's.
const remoteWrapper = `exec 3<&0 </dev/null
( while read -r _; do :; done <&3; kill -HUP 0 ) >/dev/null 2>&1 &
__exe_watch=$!
exec 3<&-
trap 'kill $__exe_watch 2>/dev/null' EXIT
if [ -n "${EXE_STDIN+x}" ]; then
	exec <<__EXE_STDIN_END__
$EXE_STDIN
__EXE_STDIN_END__
	unset EXE_STDIN
fi
eval "$0"`

// shellQuote quotes s for a POSIX shell: the only way request data reaches
// a remote command line.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// remoteCommand is the command line sent over the session.
func remoteCommand(c command) string {
	if c.raw {
		return c.script
	}
	var b strings.Builder
	b.WriteString("exec ")
	if len(c.env) > 0 {
		b.WriteString("env")
		for _, kv := range c.env {
			b.WriteString(" " + shellQuote(kv))
		}
		b.WriteString(" ")
	}
	b.WriteString("/bin/sh -c " + shellQuote(remoteWrapper) + " " + shellQuote(c.script))
	for _, a := range c.args {
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

// sshConn runs commands on one host over its pooled connection.
type sshConn struct {
	pool *pool
	host *inventory.Host
}

func (c sshConn) run(ctx context.Context, cmd command, limit int) (result, error) {
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
		res, err := runSession(ctx, sess, cmd, limit)
		c.pool.release(c.host.Name, pc)
		return res, err
	}
}

func runSession(ctx context.Context, sess *ssh.Session, cmd command, limit int) (result, error) {
	defer sess.Close()
	stdout, stderr := &capped{limit: limit}, &capped{limit: limit}
	sess.Stdout, sess.Stderr = stdout, stderr
	// hangup is the session's stdin: held open while the command runs,
	// closed (EOF) to make the remote wrapper hang up its process group.
	hangupR, hangup := io.Pipe()
	defer hangup.Close()
	if !cmd.raw {
		sess.Stdin = hangupR
		if cmd.stdin != nil {
			b, err := io.ReadAll(cmd.stdin)
			if err != nil {
				return result{}, err
			}
			cmd.env = append(cmd.env, "EXE_STDIN="+string(b))
		}
	}
	if err := sess.Start(remoteCommand(cmd)); err != nil {
		return result{}, &unreachableError{fmt.Errorf("ssh exec: %v", err)}
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	collect := func() result {
		return result{stdout: stdout.String(), stderr: stderr.String(), truncated: stdout.Truncated() || stderr.Truncated()}
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// EOF on stdin: the wrapper hangs up its process group. Closing the
		// channel afterwards bounds the wait.
		hangup.Close()
		select {
		case <-done:
		case <-time.After(time.Second):
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
