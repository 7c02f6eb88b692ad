package ansible_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/plugins/ansible"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fixture struct {
	x      *ansible.Executor
	shared string // writable by the SSH login user
}

// newFixture is an executor on an inventory of two aliases of a real sshd,
// a local-connection host and a host whose port is closed.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, err := exec.LookPath("ansible-playbook")
	testenv.Need(t, err == nil, "ansible (Debian package ansible)")
	s := sshtest.Start(t, sshtest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	x := newExecutor(t, t.TempDir(), fmt.Sprintf(`[fleet]
h1 ansible_host=127.0.0.1 ansible_port=%d
h2 ansible_host=127.0.0.1 ansible_port=%d
[fleet:vars]
ansible_user=%s
ansible_ssh_private_key_file=%s
ansible_ssh_common_args='-o UserKnownHostsFile=%s -o IdentitiesOnly=yes'
[local]
loc ansible_connection=local
[broken]
down ansible_host=127.0.0.1 ansible_port=%d ansible_ssh_common_args='-o ConnectTimeout=3'
[all:vars]
ansible_python_interpreter=/usr/bin/python3
`, s.Port, s.Port, s.User, s.ClientKey, s.KnownHosts, closed), ansible.Config{Forks: 5})
	return &fixture{x: x, shared: s.WritableDir(t)}
}

// newExecutor is an executor with cfg, the roles of testdata and
// inventory, written to dir/inventory.ini. Without ansible the test is
// skipped, or fails under EXE_REQUIRE_INTEGRATION.
func newExecutor(t *testing.T, dir, inventory string, cfg ansible.Config) *ansible.Executor {
	t.Helper()
	_, err := exec.LookPath("ansible")
	testenv.Need(t, err == nil, "ansible (Debian package ansible)")
	cfg.Inventory = filepath.Join(dir, "inventory.ini")
	require.NoError(t, os.WriteFile(cfg.Inventory, []byte(inventory), 0o600))
	cfg.Workdir, err = filepath.Abs("testdata")
	require.NoError(t, err)
	x, err := ansible.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	return x
}

// collector gathers events in the order emitted.
type collector struct {
	mu  sync.Mutex
	evs []exe.Event
}

func (c *collector) emit(ev exe.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
}

func (c *collector) byHost() map[string][]exe.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]exe.Event{}
	for _, ev := range c.evs {
		out[ev.Host] = append(out[ev.Host], ev)
	}
	return out
}

func TestStartChecks(t *testing.T) {
	_, err := exec.LookPath("ansible")
	testenv.Need(t, err == nil, "ansible (Debian package ansible)")
	_, err = ansible.New(ansible.Config{Workdir: t.TempDir()})
	assert.ErrorContains(t, err, "has no _deploy.yml")
	p := &ansible.Plugin{}
	err = p.Configure(context.Background(), map[string]string{"workdir": "testdata", "timeout": "soon"})
	assert.EqualError(t, err, `[ansible] timeout: "soon" is not a duration (e.g. 30s, 5m, 7d, or seconds)`)
	err = p.Configure(context.Background(), map[string]string{"workdir": "testdata", "kill_grace": "0"})
	assert.EqualError(t, err, `[ansible] kill_grace: must be more than 0`)
	err = p.Configure(context.Background(), map[string]string{"workdir": "testdata", "frobs": "1"})
	assert.EqualError(t, err, `[ansible] frobs: unknown option`)
	require.NoError(t, p.Configure(context.Background(), map[string]string{"workdir": "testdata", "concurrency": "8", "kill_grace": "500ms"}))
	p.Close()
}

func TestOperations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	hosts, err := f.x.Match(ctx, "fleet:local")
	require.NoError(t, err)
	assert.Equal(t, []string{"h1", "h2", "loc"}, hosts)
	hosts, err = f.x.Match(ctx, "nothing*")
	require.NoError(t, err)
	assert.Empty(t, hosts)

	var c collector
	require.NoError(t, f.x.Ping(ctx, []string{"h1", "loc", "down"}, c.emit))
	evs := c.byHost()
	assert.Equal(t, exe.HostOK, evs["h1"][0].Status)
	assert.Equal(t, exe.HostOK, evs["loc"][0].Status)
	assert.Equal(t, exe.HostUnreachable, evs["down"][0].Status)
	assert.Contains(t, evs["down"][0].Msg, "Connection refused")

	c = collector{}
	require.NoError(t, f.x.Facter(ctx, []string{"h2"}, c.emit))
	hostname, _ := os.Hostname()
	assert.Equal(t, hostname, c.byHost()["h2"][0].Facts["ansible_hostname"])

	c = collector{}
	// The command is data: a template in it is not evaluated by ansible.
	require.NoError(t, f.x.Execute(ctx, []string{"h1", "h2"}, exe.ExecuteArgs{Cmd: `echo "{{ lookup('pipe', 'id') }}"; echo err >&2; exit 3`}, c.emit))
	for _, h := range []string{"h1", "h2"} {
		ev := c.byHost()[h][0]
		assert.Equal(t, exe.HostFailed, ev.Status)
		assert.Equal(t, exe.ExecResult{RTC: 3, Stdout: "{{ lookup('pipe', 'id') }}", Stderr: "err"}, *ev.Exec)
	}

	c = collector{}
	require.NoError(t, f.x.Service(ctx, []string{"loc"}, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceStarted}, c.emit))
	assert.Equal(t, exe.HostFailed, c.byHost()["loc"][0].Status)
	assert.NotEmpty(t, c.byHost()["loc"][0].Msg)

	// A leading '-' would be an option of the service manager.
	c = collector{}
	err = f.x.Service(ctx, []string{"loc"}, exe.ServiceArgs{Name: "--help", State: exe.ServiceRestarted}, c.emit)
	assert.ErrorIs(t, err, exe.ErrInvalid)
	assert.Empty(t, c.byHost(), "nothing ran")
}

func TestDeployPartialAndUnsafeExtraVars(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var c collector
	err := f.x.Deploy(ctx, []string{"h1", "h2"}, exe.DeployArgs{Role: "web", Partial: []string{"config"},
		ExtraVars: map[string]any{"out_dir": f.shared, "port": 8080, "motd": "{{ lookup('pipe', 'id') }}"}}, c.emit)
	require.NoError(t, err)
	for _, h := range []string{"h1", "h2"} {
		b, err := os.ReadFile(filepath.Join(f.shared, h+".conf"))
		require.NoError(t, err)
		assert.Equal(t, "port=8080 motd={{ lookup('pipe', 'id') }}\n", string(b), "rendered on the host, the string never templated")
		var names []string
		for _, ev := range c.byHost()[h] {
			names = append(names, ev.Name)
		}
		assert.Equal(t, []string{"apply role", "web : write config"}, names, "partial ran only the config tag")
		assert.Equal(t, exe.HostChanged, c.byHost()[h][1].Status)
	}
	var announced []string
	for _, ev := range c.byHost()[exe.AnnounceHost] {
		announced = append(announced, ev.Name)
	}
	assert.Contains(t, announced, "web : write config")
	assert.NotContains(t, announced, "web : say hello")

	for _, bad := range []string{"ansible_user", "_role", "ansible_ssh_common_args"} {
		err := f.x.Deploy(ctx, []string{"h1"}, exe.DeployArgs{Role: "web", ExtraVars: map[string]any{bad: "x"}}, c.emit)
		assert.ErrorIs(t, err, exe.ErrInvalid, bad)
	}
}

func TestDeployFailureMarksThatHost(t *testing.T) {
	f := newFixture(t)
	var c collector
	err := f.x.Deploy(context.Background(), []string{"h1", "h2"}, exe.DeployArgs{Role: "web", Partial: []string{"hello"},
		ExtraVars: map[string]any{"fail_on": "h2"}}, c.emit)
	require.NoError(t, err)
	last := func(h string) exe.Event { evs := c.byHost()[h]; return evs[len(evs)-1] }
	assert.Equal(t, exe.HostFailed, last("h2").Status)
	assert.Equal(t, "web : fail on one host", last("h2").Name)
	assert.Equal(t, exe.HostSkipped, last("h1").Status)
}

func TestEventsStreamWhileThePlaybookRuns(t *testing.T) {
	f := newFixture(t)
	gate := filepath.Join(t.TempDir(), "gate")
	var c collector
	err := f.x.Deploy(context.Background(), []string{"loc"}, exe.DeployArgs{Role: "web", Partial: []string{"gated"},
		ExtraVars: map[string]any{"gate": gate}}, func(ev exe.Event) {
		c.emit(ev)
		if ev.Name == "apply role" && ev.Host == "loc" {
			// The playbook waits for this file: this event reached us
			// while it still ran.
			require.NoError(t, os.WriteFile(gate, nil, 0o600))
		}
	})
	require.NoError(t, err)
	var names []string
	for _, ev := range c.byHost()["loc"] {
		names = append(names, ev.Name)
	}
	assert.Equal(t, []string{"apply role", "web : wait for the gate", "web : after the gate"}, names)
}

func TestCancelKillsAnsible(t *testing.T) {
	f := newFixture(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.x.Deploy(ctx, []string{"loc"}, exe.DeployArgs{Role: "web", Partial: []string{"slow"},
			ExtraVars: map[string]any{"pid_file": pidFile}}, func(exe.Event) {})
	}()
	pid := testenv.WaitPIDFile(t, pidFile, 60*time.Second)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("deploy did not return after cancel")
	}
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }, 5*time.Second, 10*time.Millisecond,
		"the task's process was killed with ansible's process group")
}

// The hosts a cancel interrupts end FAILED "cancelled" (naming the task
// that was cut short); a host that had answered keeps its result; the
// interrupted local task, which ignores SIGHUP, is stopped with ansible's
// process group.
func TestCancelReportsInterruptedHosts(t *testing.T) {
	f := newFixture(t)
	t.Run("execute", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var c collector
		answered := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- f.x.Execute(ctx, []string{"loc", "h1"}, exe.ExecuteArgs{Cmd: fmt.Sprintf(
				`if [ -z "$SSH_CONNECTION" ]; then trap '' HUP; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; while :; do sleep 1; done; fi; echo done`, pidFile)},
				func(ev exe.Event) {
					c.emit(ev)
					if ev.Host == "h1" {
						close(answered)
					}
				})
		}()
		pid := testenv.WaitPIDFile(t, pidFile, 60*time.Second)
		select {
		case <-answered:
		case <-time.After(60 * time.Second):
			t.Fatal("h1 did not answer")
		}
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(30 * time.Second):
			t.Fatal("execute did not return after cancel")
		}
		evs := c.byHost()
		require.Len(t, evs["h1"], 1)
		assert.Equal(t, exe.HostChanged, evs["h1"][0].Status)
		require.Len(t, evs["loc"], 1, "the interrupted host has its event")
		assert.Equal(t, exe.HostFailed, evs["loc"][0].Status)
		assert.True(t, strings.HasPrefix(evs["loc"][0].Msg, "cancelled;"), evs["loc"][0].Msg)
		require.Eventually(t, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }, 10*time.Second, 10*time.Millisecond,
			"the task that ignores SIGHUP was stopped")
	})
	t.Run("deploy", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var c collector
		done := make(chan error, 1)
		go func() {
			done <- f.x.Deploy(ctx, []string{"loc"}, exe.DeployArgs{Role: "web", Partial: []string{"slow"},
				ExtraVars: map[string]any{"pid_file": pidFile}}, c.emit)
		}()
		testenv.WaitPIDFile(t, pidFile, 60*time.Second)
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("deploy did not return after cancel")
		}
		evs := c.byHost()["loc"]
		require.NotEmpty(t, evs)
		last := evs[len(evs)-1]
		assert.Equal(t, exe.HostFailed, last.Status)
		assert.Equal(t, "web : record pid and sleep", last.Name)
		assert.True(t, strings.HasPrefix(last.Msg, "cancelled;"), last.Msg)
	})
}

// Ansible reports output that is not UTF-8 with one \udcXX escape per
// byte; the executor passes on one U+FFFD per byte, as sshnative does, and
// its output cap never cuts a character in two.
func TestOutputNotUTF8(t *testing.T) {
	x := newExecutor(t, t.TempDir(), "[all:vars]\nansible_python_interpreter=/usr/bin/python3\n[local]\nloc1 ansible_connection=local\nloc2 ansible_connection=local\n",
		ansible.Config{OutputCap: 9})
	hosts := []string{"loc1", "loc2"}

	var c collector
	require.NoError(t, x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: `printf 'caf\351\n'; printf '\342\202 e' >&2`}, c.emit))
	for _, h := range hosts {
		evs := c.byHost()[h]
		require.Len(t, evs, 1, h)
		assert.Equal(t, exe.HostChanged, evs[0].Status, "%s: %s", h, evs[0].Msg)
		// Ansible strips the last newline.
		assert.Equal(t, exe.ExecResult{Stdout: "caf\uFFFD", Stderr: "\uFFFD\uFFFD e"}, *evs[0].Exec, h)
		assert.False(t, evs[0].Truncated)
	}

	c = collector{}
	require.NoError(t, x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: `printf 'ééééé'; printf '12345678€' >&2`}, c.emit))
	for _, h := range hosts {
		ev := c.byHost()[h][0]
		assert.Equal(t, exe.ExecResult{Stdout: "éééé", Stderr: "12345678"}, *ev.Exec, h)
		assert.True(t, ev.Truncated, h)
	}
}

// When ansible itself stops (a role it cannot find, a role that does not
// parse, a bad setting), its exit status is one of those of host failures
// but no host failed: each host ends FAILED with ansible's error and the
// operation fails, as the run by hand does.
func TestAnsibleStoppingFailsEveryHost(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for role, want := range map[string]string{
		"nonexistent": "ERROR! the role 'nonexistent' was not found",
		"badsyntax":   "Syntax Error while loading YAML",
	} {
		t.Run(role, func(t *testing.T) {
			var c collector
			err := f.x.Deploy(ctx, []string{"h1", "loc"}, exe.DeployArgs{Role: role}, c.emit)
			var ab *ansible.AbortError
			require.ErrorAs(t, err, &ab)
			assert.Contains(t, err.Error(), "ansible-playbook exited")
			assert.Contains(t, err.Error(), "ERROR!")
			for _, h := range []string{"h1", "loc"} {
				evs := c.byHost()[h]
				require.NotEmpty(t, evs, h)
				last := evs[len(evs)-1]
				assert.Equal(t, exe.HostFailed, last.Status, h)
				assert.Contains(t, last.Msg, want, h)
			}
		})
	}

	// An ad hoc operation that ansible refuses to run.
	x, err := ansible.New(ansible.Config{Workdir: "testdata", Inventory: "testdata/local.ini", Env: []string{"ANSIBLE_STRATEGY=nosuch"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	ops := map[string]func(exe.Emit) error{
		"ping":    func(e exe.Emit) error { return x.Ping(ctx, []string{"loc"}, e) },
		"facter":  func(e exe.Emit) error { return x.Facter(ctx, []string{"loc"}, e) },
		"execute": func(e exe.Emit) error { return x.Execute(ctx, []string{"loc"}, exe.ExecuteArgs{Cmd: "true"}, e) },
		"service": func(e exe.Emit) error {
			return x.Service(ctx, []string{"loc"}, exe.ServiceArgs{Name: "exe-no-such-service", State: exe.ServiceStarted}, e)
		},
	}
	for name, op := range ops {
		var c collector
		err := op(c.emit)
		assert.ErrorContains(t, err, "ERROR! Invalid play strategy specified: nosuch", name)
		evs := c.byHost()["loc"]
		require.Len(t, evs, 1, name)
		assert.Equal(t, exe.HostFailed, evs[0].Status, name)
		assert.Contains(t, evs[0].Msg, "ERROR! Invalid play strategy specified: nosuch", name)
	}
}
