package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pane is exectl running on a real terminal: a tmux server of the test's
// own (its own socket), one 120x40 window whose pane stays once exectl
// has exited, so that its screen can be read. A shell starts exectl and
// writes its exit status to a file: tmux may leave pane_dead_status
// unset (it marks the pane dead at the terminal's end of file, before it
// has reaped the process). The shell traps SIGINT with a no-op, so that
// a Ctrl-C meant for exectl (in the same, foreground, process group) does
// not end it first; exectl gets the default action back at exec.
type pane struct {
	t          *testing.T
	tmux       string
	sock       string
	statusFile string
}

func startPane(t *testing.T, s *server, env []string, args ...string) *pane {
	t.Helper()
	tmux := testenv.NeedBinary(t, "tmux")
	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	require.NoError(t, os.WriteFile(conf, []byte("set -g remain-on-exit on\n"), 0o600))
	p := &pane{t: t, tmux: tmux, sock: filepath.Join(dir, "sock"), statusFile: filepath.Join(dir, "status")}
	script := fmt.Sprintf(`trap : INT; "$0" "$@"; echo $? > %[1]s.tmp; mv %[1]s.tmp %[1]s`, p.statusFile)
	cmd := exec.Command(tmux, append([]string{"-S", p.sock, "-f", conf, "new-session", "-d", "-s", "exectl", "-x", "120", "-y", "40",
		"--", "/bin/sh", "-c", script, exectlBin}, args...)...)
	cmd.Env = append(append(baseEnv(), "EXED_URL="+s.url, "TERM=xterm-256color"), env...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "tmux: %s", out)
	// The tmux server this test started, by its own socket.
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", p.sock, "kill-server").Run() })
	return p
}

func (p *pane) run(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(p.tmux, append([]string{"-S", p.sock}, args...)...).CombinedOutput()
	require.NoError(p.t, err, "tmux %v: %s", args, out)
	return string(out)
}

// screen is what the pane shows, from the start of its history (the
// line tmux adds when exectl exits may scroll the first one out of
// view), wrapped lines joined; with escapes, its colours and attributes
// as SGR sequences.
func (p *pane) screen(escapes bool) string {
	p.t.Helper()
	args := []string{"capture-pane", "-p", "-J", "-S", "-", "-t", "exectl"}
	if escapes {
		args = append(args, "-e")
	}
	return p.run(args...)
}

// waitFor polls the screen (bounded) until ok holds, and returns it.
func (p *pane) waitFor(what string, ok func(screen string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := p.screen(true)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %s; it shows:\n%s", what, p.screen(false))
		}
		time.Sleep(20 * time.Millisecond) // polling what tmux shows
	}
}

func (p *pane) waitText(text string) string {
	p.t.Helper()
	return p.waitFor(fmt.Sprintf("%q", text), func(s string) bool { return strings.Contains(s, text) })
}

// exitStatus waits for exectl to exit and returns its status.
func (p *pane) exitStatus() int {
	p.t.Helper()
	var status []byte
	p.waitFor("exectl's exit", func(string) bool {
		var err error
		status, err = os.ReadFile(p.statusFile)
		return err == nil
	})
	n, err := strconv.Atoi(strings.TrimSpace(string(status)))
	require.NoError(p.t, err)
	return n
}

// sgrRE is an SGR escape sequence as capture-pane -e writes them.
var sgrRE = regexp.MustCompile(`\x1b\[([0-9;]*)m`)

// colourAt is the foreground colour (an SGR code: "33", "91"; "" for the
// default) in force where text first shows on a captured screen.
func colourAt(screen, text string) string {
	i := strings.Index(screen, text)
	if i < 0 {
		return "(not shown)"
	}
	fg := ""
	for _, m := range sgrRE.FindAllStringSubmatch(screen[:i], -1) {
		for _, code := range strings.Split(m[1], ";") {
			switch n, _ := strconv.Atoi(code); {
			case code == "" || n == 0 || n == 39:
				fg = ""
			case n >= 30 && n <= 37, n >= 90 && n <= 97:
				fg = code
			}
		}
	}
	return fg
}

// lineWith is the screen's line holding text.
func lineWith(screen, text string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, text) {
			return l
		}
	}
	return ""
}

// gated is a command that, run once per host one host at a time, waits
// (bounded) until the test creates go<N> in dir for the Nth host, then
// prints "host N".
func gated(dir string) string {
	return fmt.Sprintf(`n=$(($(cat %[1]s/count 2>/dev/null || echo 0) + 1)); echo $n > %[1]s/count; `+
		`for i in $(seq 6000); do [ -e %[1]s/go$n ] && break; sleep 0.01; done; echo "host $n"`, dir)
}

// On a terminal, each host's result shows in Ansible's colours as it
// finishes, under a one-line progress summary redrawn in place (hosts
// done, failed, running, elapsed) and cleared at the end. With NO_COLOR
// set, the same without a single colour.
func TestTerminalProgressAndColours(t *testing.T) {
	s := startServer(t, "", "")
	for _, noColor := range []bool{false, true} {
		t.Run(fmt.Sprintf("NO_COLOR=%v", noColor), func(t *testing.T) {
			dir := t.TempDir()
			var env []string
			if noColor {
				env = append(env, "NO_COLOR=1")
			}
			p := startPane(t, s, env, "run", "*", "--", gated(dir))
			noEscapes := func(screen string) {
				if noColor {
					assert.NotContains(t, screen, "\x1b[", "NO_COLOR: no colour, no attribute")
				}
			}

			// down is refused at once; h1 waits.
			screen := p.waitText("[1/3 hosts done, 1 failed, 2 running, ")
			assert.Contains(t, screen, "down | UNREACHABLE! => {")
			assert.Equal(t, 1, strings.Count(screen, "hosts done"), "one progress line, redrawn in place:\n%s", screen)
			if noColor {
				noEscapes(screen)
			} else {
				assert.Equal(t, "91", colourAt(screen, "down | UNREACHABLE!"), "unreachable is bright red")
				assert.Contains(t, lineWith(screen, "hosts done"), "\x1b[2m", "the summary is dim")
			}
			// The elapsed time moves on while nothing else happens.
			first := lineWith(p.screen(false), "hosts done")
			p.waitFor("the elapsed time moving on", func(s string) bool {
				l := lineWith(sgrRE.ReplaceAllString(s, ""), "hosts done")
				return l != "" && l != first
			})

			require.NoError(t, os.WriteFile(filepath.Join(dir, "go1"), nil, 0o644))
			screen = p.waitText("[2/3 hosts done, 1 failed, 1 running, ")
			assert.Contains(t, screen, "h1 | CHANGED | rc=0 >>")
			assert.Equal(t, 1, strings.Count(screen, "hosts done"))
			if noColor {
				noEscapes(screen)
			} else {
				assert.Equal(t, "33", colourAt(screen, "h1 | CHANGED"), "changed is yellow")
				assert.Equal(t, "33", colourAt(screen, "host 1"), "with its output")
			}

			require.NoError(t, os.WriteFile(filepath.Join(dir, "go2"), nil, 0o644))
			assert.Equal(t, exitHostsFailed, p.exitStatus(), "down was unreachable")
			screen = p.screen(true)
			assert.Contains(t, screen, "h2 | CHANGED | rc=0 >>\nhost 2")
			assert.NotContains(t, screen, "hosts done", "the summary is cleared at the end")
			assert.Contains(t, screen, "ended Failure: 1 of 3 hosts failed")
			noEscapes(screen)
			if !noColor {
				assert.Equal(t, "", colourAt(screen, "exectl: job"), "notices are not coloured")
			}
		})
	}
	t.Run("all ok", func(t *testing.T) {
		// No notice at the end: exectl clears the summary itself.
		p := startPane(t, s, nil, "run", "h1", "--", "echo done")
		assert.Equal(t, exitOK, p.exitStatus())
		screen := p.screen(false)
		assert.Contains(t, screen, "h1 | CHANGED | rc=0 >>\ndone\n")
		assert.NotContains(t, screen, "hosts done")
	})
}

// Ctrl-C while following cancels the job on the server: its command is
// stopped, its host ends FAILED "cancelled", and exectl shows it and
// exits 2. The command is a canary: its process must be gone.
func TestCtrlCCancelsTheJob(t *testing.T) {
	s := startServer(t, "", "")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	p := startPane(t, s, nil, "run", "h1", "--", fmt.Sprintf("echo started; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; exec sleep 300", pidFile))
	canary := testenv.WaitPIDFile(t, pidFile, 60*time.Second)
	p.waitText("[0/1 hosts done, 0 failed, 1 running, ")
	require.False(t, testenv.Ended(canary))

	p.run("send-keys", "-t", "exectl", "C-c")
	assert.Equal(t, exitHostsFailed, p.exitStatus())
	screen := p.screen(false)
	assert.Contains(t, screen, "Ctrl-C: cancelling job")
	assert.Contains(t, screen, "h1 | FAILED | rc=")
	assert.Contains(t, screen, "started\ncancelled", "the output so far, then why")
	jid := jidRE.FindString(lineWith(screen, "ended Failure: cancelled"))
	require.NotEmpty(t, jid, screen)

	job, err := s.client(t).Job(t.Context(), jid, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	require.Len(t, job.ReturnData["h1"], 1)
	assert.Equal(t, exe.HostFailed, job.ReturnData["h1"][0].Status)
	require.Eventually(t, func() bool { return testenv.Ended(canary) }, 30*time.Second, 10*time.Millisecond,
		"the cancelled command (pid %d) is stopped", canary)
}

// A second Ctrl-C stops following at once and leaves the job to end on
// the server: here it is still running (its command ignores SIGHUP and
// SIGTERM, so only SIGKILL, 2 kill_grace after the cancel, ends it) when
// exectl has exited 130.
func TestSecondCtrlCLeavesTheJobRunning(t *testing.T) {
	s := startServer(t, "", "kill_grace = 10s")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	p := startPane(t, s, nil, "run", "h1", "--",
		fmt.Sprintf("trap '' HUP TERM; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 0.1; done", pidFile))
	canary := testenv.WaitPIDFile(t, pidFile, 60*time.Second)
	p.waitText("[0/1 hosts done, 0 failed, 1 running, ")

	p.run("send-keys", "-t", "exectl", "C-c")
	p.waitText("Ctrl-C: cancelling job")
	p.waitText("cancelling") // the summary says so too
	p.run("send-keys", "-t", "exectl", "C-c")
	assert.Equal(t, exitInterrupted, p.exitStatus())
	screen := p.screen(false)
	jid := jidRE.FindString(lineWith(screen, "left job"))
	require.NotEmpty(t, jid, screen)
	assert.Contains(t, screen, "follow it with: exectl job "+jid+" --follow")
	assert.NotContains(t, screen, "hosts done", "the summary is cleared")

	c := s.client(t)
	job, err := c.Job(t.Context(), jid, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobRunning, job.State, "exectl left; the job goes on until its command is killed")
	assert.False(t, testenv.Ended(canary))
	require.Eventually(t, func() bool {
		job, err := c.Job(t.Context(), jid, false)
		return err == nil && job.State == exe.JobFailure && job.Error == "cancelled"
	}, 90*time.Second, 50*time.Millisecond, "the cancel the first Ctrl-C asked for ends the job")
	require.Eventually(t, func() bool { return testenv.Ended(canary) }, 30*time.Second, 10*time.Millisecond)
}
