package sshnative_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helperEnv carries a helperConfig to the test binary run as a child
// process (TestHelperExecutor).
const helperEnv = "EXE_TEST_SSHNATIVE_HELPER"

// helperConfig is what the child executor runs: an inventory, SSH options
// and one command per host, until it is killed.
type helperConfig struct {
	StateDir   string
	Inventory  string
	User       string
	KeyFile    string
	KnownHosts string
	Commands   map[string]string // by host
}

// TestHelperExecutor is not a test: run as a child process with
// helperEnv set, it is an executor process that tests kill.
func TestHelperExecutor(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		return
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		panic(err)
	}
	inv, err := inventory.Parse(strings.NewReader(cfg.Inventory), "helper.ini")
	if err != nil {
		panic(err)
	}
	x, err := sshnative.New(sshnative.Config{Inventory: inv, StateDir: cfg.StateDir, SSH: sshnative.SSHOptions{
		User: cfg.User, KeyFiles: []string{cfg.KeyFile}, KnownHosts: []string{cfg.KnownHosts}, NoAgent: true}})
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	for host, cmd := range cfg.Commands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = x.Execute(context.Background(), []string{host}, exe.ExecuteArgs{Cmd: cmd}, func(exe.Event) {})
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// gone tells whether pid has ended: no such process, or a zombie its new
// parent has yet to collect.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
}

// killAtEnd kills, when the test ends, the processes it made hosts start
// that may still run.
func killAtEnd(t *testing.T, pids ...int) {
	t.Cleanup(func() {
		for _, pid := range pids {
			if !gone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// loopCmd is a command that outlives a hang-up: a nohup'd endless loop
// whose shell writes its pid to pidFile.
func loopCmd(pidFile string) string {
	return fmt.Sprintf(`nohup sh -c 'echo $$ > %s; while :; do sleep 1; done' >/dev/null 2>&1`, pidFile)
}

// A process killed with kill -9 while its commands run (a nohup'd loop,
// GNU timeout and a setpgid(0, 0) child in groups of their own, locally
// and over SSH) leaves them running: sshd does not signal a
// command when its connection drops, and a local one is reparented. The
// next executor on the same state directory ends them; a daemon a command
// started in a session of its own is left alone, as a cancel leaves it.
func TestCommandsOfADeadProcessAreEnded(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	state := t.TempDir()
	dir := s.WritableDir(t)
	inv := fmt.Sprintf("remote ansible_host=127.0.0.1 ansible_port=%d\nlocalhost ansible_connection=local\n", s.Port)
	cfg := helperConfig{StateDir: state, Inventory: inv, User: s.User, KeyFile: s.ClientKey, KnownHosts: s.KnownHosts,
		Commands: map[string]string{}}
	for _, host := range []string{"localhost", "remote"} {
		daemon := filepath.Join(dir, host+".daemon")
		// GNU timeout and a setpgid(0, 0) child move to process groups
		// of their own, in the command's session.
		timeout := fmt.Sprintf(`timeout 300 sh -c 'echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; exec sleep 299'`, filepath.Join(dir, host+".timeout"))
		setpgid := fmt.Sprintf(setpgidCmd, filepath.Join(dir, host+".setpgid"))
		cfg.Commands[host] = fmt.Sprintf(`setsid sh -c 'echo $$ > %s; while :; do sleep 1; done' >/dev/null 2>&1 & %s & %s & %s`,
			daemon, timeout, setpgid, loopCmd(filepath.Join(dir, host+".loop")))
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	child := exec.Command(os.Args[0], "-test.run=^TestHelperExecutor$")
	child.Env = append(os.Environ(), helperEnv+"="+string(raw))
	require.NoError(t, child.Start())
	exited := make(chan struct{})
	go func() { _ = child.Wait(); close(exited) }()
	t.Cleanup(func() { _ = child.Process.Kill(); <-exited })

	pids := map[string]int{}
	for _, host := range []string{"localhost", "remote"} {
		for _, kind := range []string{"loop", "timeout", "setpgid", "daemon"} {
			pid := testenv.WaitPIDFile(t, filepath.Join(dir, host+"."+kind), 10*time.Second)
			killAtEnd(t, pid)
			pids[host+"."+kind] = pid
		}
	}
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	<-exited
	for name, pid := range pids {
		assert.False(t, gone(pid), "%s must still run after its executor died (what the reap is for)", name)
	}

	nextInv, err := inventory.Parse(strings.NewReader(inv), "next.ini")
	require.NoError(t, err)
	next, err := sshnative.New(sshnative.Config{Inventory: nextInv, StateDir: state, SSH: sshnative.SSHOptions{
		User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}, NoAgent: true}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = next.Close() })
	sshnative.WaitReaped(next)
	for _, host := range []string{"localhost", "remote"} {
		for _, kind := range []string{"loop", "timeout", "setpgid"} {
			pid := pids[host+"."+kind]
			assert.Eventually(t, func() bool { return gone(pid) }, 5*time.Second, 10*time.Millisecond,
				"%s: the command's %s (pid %d) must be ended", host, kind, pid)
		}
		assert.False(t, gone(pids[host+".daemon"]), "%s: a daemon in its own session is not the command's", host)
	}
	journals, err := filepath.Glob(filepath.Join(state, "run-*.journal"))
	require.NoError(t, err)
	assert.Len(t, journals, 1, "the dead process's journal is removed; the new one's stays while it runs")
	require.NoError(t, next.Close())
	journals, err = filepath.Glob(filepath.Join(state, "*"))
	require.NoError(t, err)
	assert.Empty(t, journals, "a process that ends with nothing running leaves no journal")
}

// Executors sharing a state directory (an API server and a worker on one
// machine) reap only the journals of dead processes. Cancelling a command
// that ignores SIGHUP over SSH still ends it: the executor makes sure its
// process group is gone after every cancel.
func TestLiveJournalsAreLeftAloneAndCancelEndsTheGroup(t *testing.T) {
	state := t.TempDir()
	f := newFleet(t, 1, sshnative.Config{StateDir: state})
	pidFile := filepath.Join(f.server.WritableDir(t), "loop")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan exe.Event, 1)
	go func() {
		_ = f.exec.Execute(ctx, []string{"h01"}, exe.ExecuteArgs{Cmd: loopCmd(pidFile)}, func(ev exe.Event) { done <- ev })
	}()
	pid := testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	killAtEnd(t, pid)

	other, err := sshnative.New(sshnative.Config{Inventory: f.inv, StateDir: state, SSH: sshnative.SSHOptions{
		User: f.server.User, KeyFiles: []string{f.server.ClientKey}, KnownHosts: []string{f.server.KnownHosts}, NoAgent: true}})
	require.NoError(t, err)
	sshnative.WaitReaped(other)
	require.NoError(t, other.Close())
	assert.False(t, gone(pid), "the journal of a live executor is not reaped")

	cancel()
	select {
	case ev := <-done:
		assert.Equal(t, exe.HostFailed, ev.Status)
		assert.Equal(t, "cancelled", ev.Msg)
	case <-time.After(10 * time.Second):
		t.Fatal("execute did not return after cancel")
	}
	sshnative.WaitReaped(f.exec)
	assert.True(t, gone(pid), "the nohup'd loop must be ended after the cancel")
}

// A connection lost while a command runs (the sshd serving it dies; the
// command goes on) is UNREACHABLE with a msg that says the command may
// still run, and the executor ends the command over a new connection.
func TestConnectionLostEndsTheCommand(t *testing.T) {
	f := newFleet(t, 1, sshnative.Config{StateDir: t.TempDir()})
	pidFile := filepath.Join(f.server.WritableDir(t), "loop")
	done := make(chan exe.Event, 1)
	go func() {
		_ = f.exec.Execute(context.Background(), []string{"h01"}, exe.ExecuteArgs{Cmd: loopCmd(pidFile)},
			func(ev exe.Event) { done <- ev })
	}()
	pid := testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	killAtEnd(t, pid)
	// The loop's parent is the login shell; its parent, the sshd process
	// of the session.
	shell := parentOf(t, pid)
	session := parentOf(t, shell)
	require.Contains(t, cmdlineOf(session), "sshd", "the login shell's parent is sshd")
	require.NoError(t, syscall.Kill(session, syscall.SIGKILL))
	select {
	case ev := <-done:
		assert.Equal(t, exe.HostUnreachable, ev.Status)
		assert.Contains(t, ev.Msg, "connection lost while the command ran")
		assert.Contains(t, ev.Msg, "the remote command may still be running")
	case <-time.After(10 * time.Second):
		t.Fatal("execute did not return after its connection was lost")
	}
	sshnative.WaitReaped(f.exec)
	assert.True(t, gone(pid), "the command is ended over a new connection")
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	require.NoError(t, err)
	return ppid
}

func cmdlineOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// A dead process's command that ran as a become user is ended as that
// user: the reap goes through sudo too (the login user may not signal
// it).
func TestCommandsOfADeadProcessAreEndedUnderBecome(t *testing.T) {
	testenv.NeedRoot(t)
	s := sshtest.Start(t, sshtest.Options{})
	sshtest.EnsureUser(t, appUser)
	sshtest.Sudoers(t, sudoerNoPass+" ALL=("+appUser+") NOPASSWD: ALL")
	state := t.TempDir()
	dir := s.WritableDir(t)
	inv := fmt.Sprintf("becomer ansible_host=127.0.0.1 ansible_port=%d ansible_become=true ansible_become_user=%s\n", s.Port, appUser)
	loop := filepath.Join(dir, "becomer.loop")
	cfg := helperConfig{StateDir: state, Inventory: inv, User: s.User, KeyFile: s.ClientKey, KnownHosts: s.KnownHosts,
		Commands: map[string]string{"becomer": loopCmd(loop)}}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	child := exec.Command(os.Args[0], "-test.run=^TestHelperExecutor$")
	child.Env = append(os.Environ(), helperEnv+"="+string(raw))
	require.NoError(t, child.Start())
	exited := make(chan struct{})
	go func() { _ = child.Wait(); close(exited) }()
	t.Cleanup(func() { _ = child.Process.Kill(); <-exited })

	pid := testenv.WaitPIDFile(t, loop, 10*time.Second)
	killAtEnd(t, pid)
	st, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	require.NoError(t, err)
	app, err := user.Lookup(appUser)
	require.NoError(t, err)
	assert.Equal(t, app.Uid, strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)), "the loop runs as the become user")
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	<-exited
	require.False(t, gone(pid), "the loop outlives its executor")

	next, err := sshnative.New(sshnative.Config{Inventory: parseInv(t, inv), StateDir: state, SSH: sshnative.SSHOptions{
		User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}, NoAgent: true, SSHConfig: "none"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = next.Close() })
	sshnative.WaitReaped(next)
	assert.True(t, gone(pid), "the become user's loop is ended")
}
