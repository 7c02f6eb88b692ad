package procgroup_test

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/procgroup"
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
