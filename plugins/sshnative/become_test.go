package sshnative_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Accounts of the become tests: a login that sudo lets become the app
// user without a password, one that must give its password, and the app
// user.
const (
	sudoerNoPass = sshtest.TestUser
	sudoerPass   = "exe-sshtest-sudopw"
	appUser      = "exe-sshtest-app"
	sudoPassword = "sudo pw with 'quotes' and $dollars"
	suPassword   = "su-pw-of-app"
)

// becomeFleet is a real sshd, sudo rules and an inventory of hosts that
// become the app user in each way.
type becomeFleet struct {
	server *sshtest.Server
	inv    string
	opts   sshnative.SSHOptions
}

func newBecomeFleet(t *testing.T) *becomeFleet {
	t.Helper()
	testenv.NeedRoot(t)
	s := sshtest.Start(t, sshtest.Options{})
	sshtest.EnsureUser(t, sudoerPass)
	sshtest.EnsureUser(t, appUser)
	sshtest.SetPassword(t, sudoerPass, sudoPassword)
	sshtest.SetPassword(t, appUser, suPassword)
	sshtest.Sudoers(t,
		sudoerNoPass+" ALL=("+appUser+") NOPASSWD: ALL",
		sudoerPass+" ALL=("+appUser+") ALL",
		"Defaults:"+sudoerPass+" timestamp_timeout=0")
	host := func(name, vars string) string {
		return fmt.Sprintf("%s ansible_host=127.0.0.1 ansible_port=%d %s\n", name, s.Port, vars)
	}
	inv := host("nopass", "ansible_user="+sudoerNoPass+" ansible_become=true ansible_become_user="+appUser) +
		host("withpass", fmt.Sprintf("ansible_user=%s ansible_become=yes ansible_become_user=%s ansible_become_password=%q", sudoerPass, appUser, sudoPassword)) +
		host("legacy", fmt.Sprintf("ansible_ssh_user=%s ansible_become=True ansible_sudo_user=%s ansible_sudo_pass=%q", sudoerPass, appUser, sudoPassword)) +
		host("unasked", fmt.Sprintf("ansible_user=%s ansible_become=true ansible_become_user=%s ansible_become_password=%q", sudoerNoPass, appUser, sudoPassword)) +
		host("nopassword", "ansible_user="+sudoerPass+" ansible_become=true ansible_become_user="+appUser) +
		host("asking", "ansible_user="+sudoerPass+" ansible_become=true ansible_become_user="+appUser+" ansible_become_flags=-S") +
		host("wrongpass", "ansible_user="+sudoerPass+" ansible_become=true ansible_become_user="+appUser+" ansible_become_password=wrong") +
		host("doas", "ansible_user="+sudoerNoPass+" ansible_become=true ansible_become_method=doas") +
		host("sameuser", "ansible_user="+sudoerNoPass+" ansible_become=true ansible_become_user="+sudoerNoPass) +
		host("offbecome", "ansible_user="+sudoerNoPass+" ansible_become=false ansible_become_user="+appUser) +
		host("rootsu", "ansible_user=root ansible_become=true ansible_become_method=su ansible_become_user="+appUser) +
		host("su", fmt.Sprintf("ansible_user=%s ansible_become=true ansible_become_method=su ansible_become_user=%s ansible_become_pass=%s", sudoerNoPass, appUser, suPassword))
	return &becomeFleet{server: s, inv: inv,
		opts: sshnative.SSHOptions{KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}, NoAgent: true}}
}

func TestBecome(t *testing.T) {
	f := newBecomeFleet(t)
	x := newInvExec(t, f.inv, f.opts)
	ctx := context.Background()
	evs := collect(t, func(emit exe.Emit) error {
		return x.Execute(ctx, []string{"nopass", "withpass", "legacy", "nopassword", "asking", "wrongpass", "doas", "sameuser", "offbecome", "rootsu", "su"},
			exe.ExecuteArgs{Cmd: `id -un; echo "$SSH_CONNECTION"`}, emit)
	})
	for host, user := range map[string]string{
		"nopass": appUser, "withpass": appUser, "legacy": appUser, "rootsu": appUser, "su": appUser,
		"sameuser": sudoerNoPass, "offbecome": sudoerNoPass,
	} {
		ev := evs[host]
		require.Equal(t, exe.HostChanged, ev.Status, "%s: %s", host, ev.Msg)
		assert.Equal(t, user, strings.SplitN(ev.Exec.Stdout, "\n", 2)[0], host)
		assert.NotContains(t, ev.Exec.Stderr, "password", "%s: no prompt in the output", host)
	}
	for host, msg := range map[string]string{
		"nopassword": "become " + appUser + " with sudo failed: sudo needs a password and none is set (ansible_become_password); the command was not run",
		"asking":     "become " + appUser + " with sudo failed: sudo asked for a password and none is set (ansible_become_password); the command was not run",
		"wrongpass":  "become " + appUser + " with sudo failed: the password was refused (ansible_become_password); the command was not run",
		"doas":       `become method "doas" is not supported by sshnative (it supports sudo and su); the command was not run`,
	} {
		ev := evs[host]
		assert.Equal(t, exe.HostFailed, ev.Status, host)
		assert.Equal(t, msg, ev.Msg, host)
	}

	// facter and deploy scripts run as the become user too; stdin reaches
	// the script, never the password.
	facts := collect(t, func(emit exe.Emit) error { return x.Facter(ctx, []string{"withpass", "nopassword"}, emit) })
	assert.Equal(t, exe.HostOK, facts["withpass"].Status, facts["withpass"].Msg)
	assert.Equal(t, exe.HostFailed, facts["nopassword"].Status)

	roles := t.TempDir()
	writeRole(t, roles, "whoami", map[string]string{"main.sh": "id -un; cat"})
	xd := newCfgExec(t, f.inv, sshnative.Config{SSH: f.opts, Roles: roles})
	// unasked has a password sudo does not ask for: it must not reach the
	// script's stdin.
	evList, err := deployEvents(t, xd, []string{"withpass", "unasked"}, exe.DeployArgs{Role: "whoami", ExtraVars: map[string]any{"k": "v"}})
	require.NoError(t, err)
	seen := 0
	for _, ev := range evList {
		if ev.Host == "withpass" || ev.Host == "unasked" {
			seen++
			require.Equal(t, exe.HostChanged, ev.Status, "%s: %s", ev.Host, ev.Msg)
			assert.Equal(t, appUser+"\n{\"k\":\"v\"}", ev.Exec.Stdout, ev.Host)
		}
	}
	assert.Equal(t, 2, seen)
}

// The password travels on stdin only: no process's command line holds it
// while the command runs, and cancelling stops the command, which runs
// as another user than the login.
func TestBecomePasswordNeverOnACommandLine(t *testing.T) {
	f := newBecomeFleet(t)
	x := newInvExec(t, f.inv, f.opts)
	pidFile := filepath.Join(f.server.WritableDir(t), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan exe.Event, 1)
	go func() {
		_ = x.Execute(ctx, []string{"withpass"}, exe.ExecuteArgs{Cmd: fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile)},
			func(ev exe.Event) { done <- ev })
	}()
	pid := testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	st, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	require.NoError(t, err)
	assert.NotEqual(t, uint32(0), st.Sys().(*syscall.Stat_t).Uid, "runs as the app user")
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	require.NoError(t, err)
	checked := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		checked++
		assert.False(t, bytes.Contains(b, []byte(sudoPassword)), "%s holds the password: %q", p, b)
	}
	require.NotZero(t, checked)
	cancel()
	select {
	case ev := <-done:
		assert.Equal(t, exe.HostFailed, ev.Status)
		assert.Equal(t, "cancelled", ev.Msg)
	case <-time.After(10 * time.Second):
		t.Fatal("execute did not return after cancel")
	}
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
	}, 10*time.Second, 10*time.Millisecond, "the become user's sleep %d must be stopped with its group", pid)
}
