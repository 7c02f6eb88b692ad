package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sighup sends SIGHUP to the server and waits (bounded) for one more log
// line holding want; the server must still run.
func (p *proc) sighup(t *testing.T, want string) {
	t.Helper()
	before := strings.Count(p.logs.String(), want)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Count(p.logs.String(), want) > before },
		30*time.Second, 10*time.Millisecond, "no %q after SIGHUP\n%s", want, p.logs)
	select {
	case err := <-p.done:
		t.Fatalf("SIGHUP ended exed: %v\n%s", err, p.logs)
	default:
	}
}

// SIGHUP re-reads the inventory: new hosts are targets as soon as the
// reload is logged; an inventory that no longer loads is refused with a
// log line naming the cause, and the one in use stays; a job running
// across both reloads ends as it would have.
func TestSIGHUPReloadsInventory(t *testing.T) {
	dir := t.TempDir()
	p := startOnInventory(t, dir, "[web]\nweb1 ansible_connection=local\n", "")
	inv := filepath.Join(dir, "hosts.ini")
	base := "http://" + p.addr
	target := func() []string {
		t.Helper()
		code, body := httpDo(t, "GET", base+"/target?pattern=all", "")
		require.Equal(t, 200, code, string(body))
		var hosts []string
		require.NoError(t, json.Unmarshal(body, &hosts))
		return hosts
	}
	assert.Equal(t, []string{"web1"}, target())
	release := filepath.Join(dir, "release")
	running := post(t, base, "/execute", fmt.Sprintf(`{"targets":["web1"],"cmd":"while [ ! -e %s ]; do sleep 0.05; done; echo survived"}`, release))

	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n[db]\ndb1 ansible_connection=local\n"), 0o600))
	p.sighup(t, "reload done")
	assert.Contains(t, p.logs.String(), "inventory reloaded")
	assert.Equal(t, []string{"db1", "web1", "web2"}, target())
	code, body := httpDo(t, "GET", base+"/ping?target=web2", "")
	require.Equal(t, 200, code, string(body))
	assert.JSONEq(t, `{"web2":{"status":1}}`, string(body))

	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb[01:04\n"), 0o600))
	p.sighup(t, "reload done")
	assert.Contains(t, p.logs.String(), "the inventory was not reloaded; the one in use stays")
	assert.Contains(t, p.logs.String(), "unterminated range")
	assert.Equal(t, []string{"db1", "web1", "web2"}, target(), "a broken inventory keeps the one in use")

	require.NoError(t, os.WriteFile(release, nil, 0o600))
	final := follow(t, base, running)
	assert.EqualValues(t, 0, final["state"], "the job running across both reloads ends Done: %v", final)
	p.stop(t)
}

// A SIGHUP that arrives while exed is still reading its configuration
// does not end it (its default action): the reload happens once exed
// runs. The configuration is a named pipe, so the signal is sent while
// exed is, for certain, reading it.
func TestSIGHUPWhileStartingDoesNotEndExed(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "exed.conf")
	require.NoError(t, syscall.Mkfifo(conf, 0o600))
	cmd := exec.Command(binary, "-c", conf)
	cmd.Dir = dir
	var logs lockedBuffer
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
		done <- cmd.Wait()
	}()
	// Opening the pipe for writing returns once exed has opened it to
	// read (an exed that died first would leave it blocked: bounded).
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(conf, os.O_WRONLY, 0)
		if err == nil {
			opened <- f
		}
	}()
	var w *os.File
	select {
	case w = <-opened:
	case err := <-done:
		t.Fatalf("exed ended before reading its configuration: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("exed did not open its configuration\n%s", logs.String())
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	_, err = fmt.Fprintf(w, "[api]\nlisten_port = %d\n[runner]\nstate_dir = %s\n", freePort(t), filepath.Join(dir, "state"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	// exed starts, then reloads.
	deadline := time.After(60 * time.Second)
	for out := logs.String(); !strings.Contains(out, "exed listening") || !strings.Contains(out, "reload done"); out = logs.String() {
		select {
		case err := <-done:
			t.Fatalf("SIGHUP while starting ended exed: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("exed did not start and reload\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "exed exits 0 on SIGTERM\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("exed did not stop on SIGTERM")
	}
}

// SIGHUP reopens the log files, so that a rotation (rename, then
// SIGHUP, as logrotate does) has exed write to new files: the access log
// and the audit trail go on in files of their names, the renamed ones
// get nothing more.
func TestSIGHUPReopensLogFiles(t *testing.T) {
	dir := t.TempDir()
	access, audit := filepath.Join(dir, "access.log"), filepath.Join(dir, "audit.log")
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("admin-0123456789abcdef name=admin\n"), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\nauth_token_file = %s\n[log]\naccess_log = %s\naudit_log = %s\n",
		freePort(t), tokens, access, audit))
	p := start(t, dir, "-c", conf)
	denied := func() {
		t.Helper()
		code, body := httpDo(t, "GET", "http://"+p.addr+"/jobs", "")
		require.Equal(t, 401, code, string(body))
	}
	denied()
	for _, f := range []string{access, audit} {
		require.Eventually(t, func() bool { b, _ := os.ReadFile(f); return len(b) > 0 }, 10*time.Second, 10*time.Millisecond, f)
		require.NoError(t, os.Rename(f, f+".1"))
	}
	before := map[string]string{}
	for _, f := range []string{access, audit} {
		b, err := os.ReadFile(f + ".1")
		require.NoError(t, err)
		before[f] = string(b)
	}
	p.sighup(t, "reload done")
	denied()
	for _, f := range []string{access, audit} {
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(f)
			return strings.Contains(string(b), "/jobs")
		}, 10*time.Second, 10*time.Millisecond, "%s is written again after SIGHUP", f)
		b, err := os.ReadFile(f + ".1")
		require.NoError(t, err)
		assert.Equal(t, before[f], string(b), "the renamed %s gets nothing more", f)
	}
	p.stop(t)
}
