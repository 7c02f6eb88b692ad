package sshnative

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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
// the request's command, quoted and evaluated as sh -c would run it. With
// b, the script runs as the become user (b.wrap, with sudo's prompt) and
// reports the process group it runs in, which sudo and su do not lead.
func remoteCommand(c command, posix bool, b *become, prompt string) string {
	if c.raw && b == nil {
		return c.script
	}
	var s strings.Builder
	pg := `"$$"`
	if b != nil {
		s.WriteString(pgidPrologue)
		pg = `"$__exe_pg"`
	}
	s.WriteString(`printf '` + pidMarker + `%d\n' ` + pg + ` >&2` + "\n")
	if c.runID != "" {
		if b != nil {
			s.WriteString("export " + runIDVar + "=" + c.runID + ":$__exe_pg\n")
		} else {
			s.WriteString(runIDExport(c.runID))
		}
	}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		s.WriteString("export " + k + "=" + shellQuote(v) + "\n")
	}
	s.WriteString("set --")
	for _, a := range c.args {
		s.WriteString(" " + shellQuote(a))
	}
	s.WriteString("\neval " + shellQuote(c.script))
	line := s.String()
	if b != nil {
		line = b.wrap(line, prompt)
	}
	if !posix {
		return "exec /bin/sh -c " + shellQuote(line)
	}
	return line
}

// sshConn runs commands on one host over its pooled connection. It lives
// in the host's setup (hostSetup), and operations use it through a pointer:
// made per operation, it was an allocation per host.
type sshConn struct {
	x *Executor // its pool and Config.KillGrace
	// become, when set, runs every command as another user.
	become *become
	ep     endpoint // where and as whom; ep.name is the inventory host
	posix  bool     // the login shell is a POSIX sh (ansible_shell_type)
}

// poolName is the name of the host's pooled connection: the inventory
// host and ep.key(). Made when a command runs, not when the host is set
// up, so that setting up every host of a large inventory neither builds
// nor keeps 100,000 names.
func (c *sshConn) poolName() string {
	var buf [256]byte
	name := append(buf[:0], c.ep.name...)
	name = append(name, 0)
	return string(c.ep.appendKey(name))
}

func (c *sshConn) run(ctx context.Context, cmd command, limit int) (result, error) {
	prompt := ""
	if c.become != nil && c.become.method == "sudo" {
		prompt = newPrompt()
	}
	line := remoteCommand(cmd, c.posix, c.become, prompt)
	if len(line) > maxCommandBytes {
		return result{}, fmt.Errorf("the remote command line is %d KiB, more than the %d KiB one argument can hold", len(line)>>10, maxCommandBytes>>10)
	}
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return result{}, &notStartedError{context.Cause(ctx)}
		}
		l, err := c.x.pool.acquire(ctx, c.poolName(), &c.ep)
		if err != nil {
			if ctx.Err() != nil {
				return result{}, &notStartedError{context.Cause(ctx)}
			}
			return result{}, &unreachableError{err}
		}
		client := l.c
		sess, err := client.NewSession()
		if err != nil {
			// The server dropped a pooled connection: re-dial once.
			c.x.pool.drop(l.pc, client)
			c.x.pool.release(l)
			if attempt == 0 && ctx.Err() == nil {
				continue
			}
			return result{}, &unreachableError{fmt.Errorf("ssh session: %v", err)}
		}
		res, err := c.runSession(ctx, client, sess, line, prompt, cmd, limit)
		c.x.pool.release(l)
		return res, err
	}
}

// hangupWait bounds the steps of a stop that do not depend on the grace:
// waiting for the command's pid, opening the stop session, and the
// command's session ending once its processes are gone.
const hangupWait = time.Second

// stopSlack is what a stop may take beyond its three grace periods before
// it is reported unfinished: the stop script scans /proc and forks at
// every step, which on a host under heavy load takes seconds; it ends as
// soon as the command's processes are gone, so a generous bound costs
// nothing when the host is well.
const stopSlack = 15 * time.Second

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

// started is a session whose command has been sent.
type started struct {
	sess           *ssh.Session
	stdout, stderr *capped
	pids           *pidFilter
	done           chan error // the session's end, once
	// prompts counts the password prompts of a become method (after done).
	prompts func() int
}

// start starts line on sess. With a become method, stdin is fed by
// feedBecome: the password when sudo or su prompts for it, then, once
// the command has started as the become user, the command's stdin.
func (c *sshConn) start(sess *ssh.Session, line, prompt string, cmd command, limit int) (*started, error) {
	st := &started{sess: sess, stdout: &capped{limit: limit}, stderr: &capped{limit: limit}, done: make(chan error, 1)}
	st.pids = newPIDFilter(st.stderr)
	sess.Stdout, sess.Stderr = st.stdout, st.stderr
	if !cmd.raw || c.become != nil {
		sess.Stderr = st.pids
	}
	var stdin io.WriteCloser
	if c.become == nil {
		st.prompts = func() int { return 0 }
		if cmd.stdin != nil {
			// Written by a goroutine of ours, not the session's: a command
			// that exits without reading its stdin has ended, and the
			// write that then fails is no lost connection.
			var err error
			if stdin, err = sess.StdinPipe(); err != nil {
				return nil, &unreachableError{fmt.Errorf("ssh exec: %v", err)}
			}
		}
	} else {
		b := c.become
		st.pids.isPrompt = func(p []byte) bool { return b.isPrompt(p, prompt) }
		st.pids.dropPrompt = func(p []byte) []byte { return b.dropPrompt(p, prompt) }
		var err error
		if stdin, err = sess.StdinPipe(); err != nil {
			return nil, &unreachableError{fmt.Errorf("ssh exec: %v", err)}
		}
	}
	if err := sess.Start(line); err != nil {
		return nil, &unreachableError{fmt.Errorf("ssh exec: %v", err)}
	}
	ended := make(chan struct{})
	go func() { err := sess.Wait(); close(ended); st.done <- err }()
	switch {
	case stdin != nil && c.become == nil:
		go func() { _, _ = io.Copy(stdin, cmd.stdin); stdin.Close() }()
	case stdin != nil:
		n := make(chan int, 1)
		go func() { n <- c.become.feed(stdin, st.pids, cmd.stdin, ended) }()
		st.prompts = func() int { return <-n }
	}
	return st, nil
}

// feed writes stdin of a become command: the password at each prompt
// (once: a second prompt means it was refused, and stdin is closed so
// that sudo or su gives up), the command's own stdin once the command has
// started. It returns how many prompts it saw.
func (b *become) feed(w io.WriteCloser, pids *pidFilter, stdin io.Reader, ended <-chan struct{}) int {
	defer w.Close()
	prompts := 0
	for {
		select {
		case <-pids.started:
			if stdin != nil {
				_, _ = io.Copy(w, stdin)
			}
			return prompts
		case <-pids.prompts:
			prompts++
			if b.password == "" || prompts > 1 {
				return prompts
			}
			if _, err := io.WriteString(w, b.password+"\n"); err != nil {
				return prompts
			}
		case <-ended:
			return prompts
		}
	}
}

func (st *started) collect() result {
	st.pids.flush()
	return result{stdout: st.stdout.String(), stderr: st.stderr.String(), truncated: st.stdout.Truncated() || st.stderr.Truncated(),
		started: true}
}

func (c *sshConn) runSession(ctx context.Context, client *ssh.Client, sess *ssh.Session, line, prompt string, cmd command, limit int) (result, error) {
	defer sess.Close()
	st, err := c.start(sess, line, prompt, cmd, limit)
	if err != nil {
		return result{}, err
	}
	select {
	case err = <-st.done:
	case <-ctx.Done():
		select {
		case err = <-st.done: // it had ended: its result stands
			return c.ended(st, err)
		default:
		}
		cause := context.Cause(ctx)
		if !cmd.raw || c.become != nil {
			if serr := c.stopRemote(client, st, cmd.runID); serr != nil {
				cause = &stopError{cause: cause, reason: serr.Error()}
			}
		}
		select {
		case <-st.done:
		case <-time.After(hangupWait):
			// Closing the channel bounds the wait; the process group has
			// been stopped (or could not be).
			_ = sess.Close()
		}
		res := st.collect()
		res.rtc = -1
		return res, cause
	}
	return c.ended(st, err)
}

// ended is the result of a command whose session ended by itself. With a
// become method, a session that ended before the command reported its
// start is a become failure: sudo or su refused.
func (c *sshConn) ended(st *started, err error) (result, error) {
	res, err := sessionResult(err, st.collect())
	if c.become == nil || st.pids.hasStarted() {
		st.prompts()
		return res, err
	}
	prompts := st.prompts()
	if err != nil {
		return res, err
	}
	res.started = false
	return res, c.become.failure(prompts, res.stderr, res.rtc)
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
// stopScript, run in a second session on the same connection (as the
// become user, when there is one: only it may signal the command), once
// the command has reported its pid (it does so first thing) or has ended.
// It says why when it could not.
func (c *sshConn) stopRemote(client *ssh.Client, st *started, runID string) error {
	var pid int
	select {
	case pid = <-st.pids.pid:
	case err := <-st.done:
		st.done <- err // leave the result for the caller
		return nil
	case <-time.After(hangupWait):
		return errors.New("the command did not report its process ID, so it was not stopped; " + mayStillRun)
	}
	stop, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("no session to stop the command (%v); %s", err, mayStillRun)
	}
	defer stop.Close()
	tenths := int((c.x.cfg.KillGrace + 99*time.Millisecond) / (100 * time.Millisecond))
	mark := ""
	if runID != "" {
		mark = runIDVar + "=" + runID + ":" + strconv.Itoa(pid)
	}
	prompt := ""
	if c.become != nil && c.become.method == "sudo" {
		prompt = newPrompt()
	}
	stopCmd := command{script: stopScript, args: []string{strconv.Itoa(pid), strconv.Itoa(tenths), mark}}
	line := remoteCommand(stopCmd, c.posix, c.become, prompt)
	sst, err := c.start(stop, line, prompt, stopCmd, DefaultOutputCap)
	if err != nil {
		return fmt.Errorf("stopping the command failed (%v); %s", err, mayStillRun)
	}
	select {
	case err := <-sst.done:
		res, err := c.ended(sst, err)
		switch {
		case err != nil:
			return fmt.Errorf("stopping the command failed (%v); %s", err, mayStillRun)
		case res.rtc == 1:
			return errors.New("a process of the command outlived SIGKILL; " + mayStillRun)
		case res.rtc != 0:
			return fmt.Errorf("stopping the command failed (exit %d); %s", res.rtc, mayStillRun)
		}
		return nil
	case <-time.After(3*c.x.cfg.KillGrace + stopSlack):
		return errors.New("stopping the command did not finish; " + mayStillRun)
	}
}
