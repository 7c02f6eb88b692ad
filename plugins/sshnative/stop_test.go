package sshnative_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testGrace keeps the escalation short in tests.
const testGrace = 300 * time.Millisecond

// stubborn are commands that outlive a SIGHUP, each writing the pid that
// must be gone to the file %[1]s and printing "started" first.
var stubborn = []struct{ name, cmd string }{
	// nohup makes the loop ignore SIGHUP; SIGTERM ends it.
	{"nohup loop", `echo started; nohup sh -c 'echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 1; done' & wait`},
	// The script handles SIGHUP and goes on; SIGTERM ends it.
	{"HUP trap", `trap 'echo hup' HUP; echo started; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 1; done`},
	// Only SIGKILL ends it.
	{"HUP and TERM ignored", `trap '' HUP TERM; echo started; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 1; done`},
	// GNU timeout (without --foreground) moves to a process group of its
	// own; the pid is that of the sleep it runs.
	{"timeout", `echo started; timeout 300 sh -c 'echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; exec sleep 299'`},
	// So does any process that calls setpgid(0, 0).
	{"setpgid", `echo started; ` + setpgidCmd},
}

// python3 is the system's interpreter when there is one: a version
// manager's shim (pyenv) can take seconds to start on a busy machine,
// longer than the stop being tested waits.
var python3 = func() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}()

// setpgidCmd moves to a process group of its own, writes its pid to the
// file %[1]s and sleeps.
var setpgidCmd = python3 + ` -c 'import os, sys
os.setpgid(0, 0)
open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()) + "\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
os.execvp("sleep", ["sleep", "299"])' %[1]s`

// stoppedByPID waits (bounded) until pid has ended on this machine.
func stoppedByPID(t *testing.T, pid int, what string) {
	t.Helper()
	require.Eventually(t, func() bool { return gone(pid) }, 5*time.Second, 10*time.Millisecond,
		"%s: process %d still runs", what, pid)
}

// interrupt runs cmd on host, waits for the pid it writes, then ends it
// by cancelling (timeout false) or lets the executor's command_timeout end
// it, and returns the host's event and the pid.
func interrupt(t *testing.T, x *sshnative.Executor, host, cmd, pidFile string, timeout bool) (exe.Event, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan exe.Event, 2)
	returned := make(chan error, 1)
	go func() {
		returned <- x.Execute(ctx, []string{host}, exe.ExecuteArgs{Cmd: cmd}, func(ev exe.Event) { events <- ev })
	}()
	// A root login's shell may read rc files that take seconds on a busy
	// machine (a version manager's init) before the command starts.
	pid := testenv.WaitPIDFile(t, pidFile, 30*time.Second)
	killAtEnd(t, pid)
	if !timeout {
		cancel()
	}
	select {
	case err := <-returned:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("execute did not return")
	}
	require.Len(t, events, 1, "one event for the host")
	return <-events, pid
}

func checkInterrupted(t *testing.T, ev exe.Event, msg string) {
	t.Helper()
	assert.Equal(t, exe.HostFailed, ev.Status)
	assert.Equal(t, msg, ev.Msg)
	require.NotNil(t, ev.Exec, "partial output")
	assert.Equal(t, -1, ev.Exec.RTC)
	assert.Contains(t, ev.Exec.Stdout, "started\n", "what the command printed before it was stopped")
}

func TestStopEscalatesLocally(t *testing.T) {
	for _, timeout := range []bool{false, true} {
		cfg := sshnative.Config{KillGrace: testGrace}
		msg := "cancelled"
		if timeout {
			cfg.CommandTimeout, msg = time.Second, "command timed out"
		}
		x := newExec(t, cfg)
		for _, c := range stubborn {
			t.Run(fmt.Sprintf("%s/timeout=%v", c.name, timeout), func(t *testing.T) {
				pidFile := filepath.Join(t.TempDir(), "pid")
				ev, pid := interrupt(t, x, "localhost", fmt.Sprintf(c.cmd, pidFile), pidFile, timeout)
				checkInterrupted(t, ev, msg)
				stoppedByPID(t, pid, c.name)
			})
		}
	}
}

func TestStopEscalatesOverSSH(t *testing.T) {
	for _, root := range []bool{false, true} {
		t.Run(fmt.Sprintf("root=%v", root), func(t *testing.T) {
			// sshd refuses signal requests for root logins: stopping must
			// not depend on them.
			// The command_timeout counts from the session's start, so it
			// also covers the login shell's rc files: root's may take
			// seconds on a busy machine (a version manager's init), and
			// a command stopped before it started tests nothing. The
			// cases run at once, so the longer bound costs its length
			// once.
			timeout := 2 * time.Second
			if root {
				timeout = 8 * time.Second
			}
			cancelled := newFleetAs(t, 1, sshnative.Config{KillGrace: testGrace}, root)
			timedOut := newFleetAs(t, 1, sshnative.Config{KillGrace: testGrace, CommandTimeout: timeout}, root)
			for _, c := range stubborn {
				for _, host := range []string{"h01", "viash"} {
					t.Run(c.name+"/"+host, func(t *testing.T) {
						t.Parallel()
						pidFile := filepath.Join(cancelled.server.WritableDir(t), "pid")
						ev, pid := interrupt(t, cancelled.exec, host, fmt.Sprintf(c.cmd, pidFile), pidFile, false)
						checkInterrupted(t, ev, "cancelled")
						stoppedByPID(t, pid, c.name+" after cancel")

						pidFile = filepath.Join(timedOut.server.WritableDir(t), "pid")
						ev, pid = interrupt(t, timedOut.exec, host, fmt.Sprintf(c.cmd, pidFile), pidFile, true)
						checkInterrupted(t, ev, "command timed out")
						stoppedByPID(t, pid, c.name+" after command_timeout")
					})
				}
			}
		})
	}
}
