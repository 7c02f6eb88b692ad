package procgroup_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/procgroup"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each command needs the signal named to end; Stop sends no more than it
// takes, and the group is gone when it returns.
func TestStopEscalatesAsFarAsNeeded(t *testing.T) {
	for _, tc := range []struct {
		script string
		last   syscall.Signal
	}{
		{"sleep 300 & echo ready; wait", syscall.SIGHUP},
		{"trap 'echo hup' HUP; echo ready; while :; do sleep 1; done", syscall.SIGTERM},
		{"trap '' HUP TERM; sleep 300 & echo ready; while :; do sleep 1; done", syscall.SIGKILL},
	} {
		t.Run(tc.last.String(), func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tc.script)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			waited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(waited) }()
			_, err = out.Read(make([]byte, 6)) // "ready\n": the traps are set
			require.NoError(t, err)
			assert.Equal(t, tc.last, procgroup.Stop(cmd.Process.Pid, 200*time.Millisecond))
			<-waited
			assert.True(t, procgroup.Gone(cmd.Process.Pid, 5*time.Second), "no process of the group is left")
		})
	}
}

// A command that leads its session: the processes it moved to groups of
// their own (GNU timeout, a setpgid(0, 0) child) end with it when they
// carry its mark, whatever they do with SIGHUP; a daemon in a session of
// its own, and a group of the session without the mark, are left alone.
func TestStopSessionEndsTheCommandsGroups(t *testing.T) {
	dir := t.TempDir()
	const mark = "EXE_TEST_MARK=1"
	script := `echo $$ > ` + dir + `/shell
timeout 300 sh -c 'echo $$ > ` + dir + `/timeout; exec sleep 299' &
` + python3 + ` -c 'import os, sys, time
os.setpgid(0, 0)
open(sys.argv[1], "w").write(str(os.getpid()) + "\n")
os.execvp("sleep", ["sleep", "298"])' ` + dir + `/setpgid &
env -u EXE_TEST_MARK ` + python3 + ` -c 'import os, sys
os.setpgid(0, 0)
open(sys.argv[1], "w").write(str(os.getpid()) + "\n")
os.execvp("sleep", ["sleep", "297"])' ` + dir + `/unmarked &
setsid sh -c 'echo $$ > ` + dir + `/daemon; exec sleep 296' &
trap '' HUP TERM
echo ready
wait`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(cmd.Environ(), mark)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	pids := map[string]int{}
	for _, name := range []string{"timeout", "setpgid", "unmarked", "daemon"} {
		pids[name] = testenv.WaitPIDFile(t, filepath.Join(dir, name), 10*time.Second)
		t.Cleanup(func() { _ = syscall.Kill(pids[name], syscall.SIGKILL) })
	}
	_, err = out.Read(make([]byte, 6)) // "ready\n": the traps are set
	require.NoError(t, err)

	last, ended := procgroup.StopSession(cmd.Process.Pid, mark, 200*time.Millisecond)
	assert.Equal(t, syscall.SIGKILL, last, "the shell ignores SIGHUP and SIGTERM")
	assert.True(t, ended)
	<-waited
	for _, name := range []string{"timeout", "setpgid"} {
		pid := pids[name]
		assert.Eventually(t, func() bool { return processGone(pid) }, 5*time.Second, 10*time.Millisecond, "%s (pid %d) must be ended", name, pid)
	}
	for _, name := range []string{"unmarked", "daemon"} {
		assert.False(t, processGone(pids[name]), "%s (pid %d) is not the command's", name, pids[name])
	}
}

// processGone tells whether pid has ended: no such process, or a zombie
// its new parent has yet to collect.
func processGone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// python3 is the system's interpreter when there is one: a version
// manager's shim (pyenv) can take seconds to start on a busy machine.
var python3 = func() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}()
