package sshnative_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What sshnative does not honour is a warning at load naming the variable
// and the hosts; a host whose address, user or privilege depend on it is
// UNREACHABLE or FAILED, and never reached some other way.
func TestUnhonouredSettingsAreWarnedAndRefused(t *testing.T) {
	sshConfig := writeFile(t, filepath.Join(t.TempDir(), "ssh_config"), "Host legacy-*\n    ProxyCommand nc %h %p\n")
	inv := `[db]
db1 ansible_host=db1.invalid ansible_password=secret
db2 ansible_host=db2.invalid ansible_ssh_pass=secret
[win]
win1 ansible_host=win1.invalid ansible_connection=winrm
[web]
web1 ansible_host=web1.invalid ansible_ssh_common_args='-o Ciphers=aes128-ctr -o "ProxyCommand=nc %h %p"'
web2 ansible_host=web2.invalid ansible_ssh_common_args='-o Ciphers=aes128-ctr -o "ProxyCommand=nc %h %p"'
[app]
app1 ansible_host=app1.invalid ansible_become=true ansible_become_method=runas
[old]
legacy-1 ansible_host=legacy-1.invalid
`
	var logs bytes.Buffer
	cfg := sshnative.Config{SSH: sshnative.SSHOptions{SSHConfig: sshConfig, NoAgent: true},
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})}
	x := newCfgExec(t, inv, cfg)
	assert.ElementsMatch(t, []string{
		"ansible_password is not honoured: sshnative logs in with keys and ssh-agent only (host db1)",
		"ansible_ssh_pass is not honoured: sshnative logs in with keys and ssh-agent only (host db2)",
		"ansible_connection=winrm is not supported by sshnative (ssh and local are): these hosts are UNREACHABLE (host win1)",
		"ansible_ssh_common_args: sshnative ignores -o Ciphers=aes128-ctr (hosts web1, web2)",
		"ansible_ssh_common_args: sshnative cannot apply -o ProxyCommand=nc %h %p, which would change where ssh connects: these hosts are UNREACHABLE (hosts web1, web2)",
		"ansible_become_method=runas is not supported by sshnative (sudo and su are): these hosts are FAILED (host app1)",
		"ssh_config " + sshConfig + ":2: sshnative cannot apply ProxyCommand nc %h %p (Host legacy-*): the hosts it matches are UNREACHABLE",
	}, x.Warnings())
	for _, w := range x.Warnings() {
		assert.Contains(t, logs.String(), w, "logged at load")
	}

	evs := collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), []string{"win1", "web1", "app1", "legacy-1"}, exe.ExecuteArgs{Cmd: "true"}, emit)
	})
	for host, want := range map[string]struct {
		status exe.HostStatus
		msg    string
	}{
		"win1":     {exe.HostUnreachable, "ansible_connection=winrm is not supported (use ssh or local)"},
		"web1":     {exe.HostUnreachable, "sshnative cannot apply -o ProxyCommand=nc %h %p from the host's ssh arguments: ssh would connect differently"},
		"app1":     {exe.HostFailed, `become method "runas" is not supported by sshnative (it supports sudo and su); the command was not run`},
		"legacy-1": {exe.HostUnreachable, "sshnative cannot apply ProxyCommand nc %h %p (" + sshConfig + "): ssh would connect through it; use ProxyJump"},
	} {
		assert.Equal(t, want.status, evs[host].Status, host)
		assert.Equal(t, want.msg, evs[host].Msg, host)
	}
	for _, h := range []string{"win1", "web1", "app1", "legacy-1"} {
		assert.False(t, strings.Contains(evs[h].Msg, "resolve"), "%s was never dialled", h)
	}
}

// A warning names at most ten hosts.
func TestWarningsNameTenHosts(t *testing.T) {
	x := newCfgExec(t, "[db]\ndb[01:25] ansible_password=x\n", sshnative.Config{SSH: sshnative.SSHOptions{NoAgent: true}})
	require.Len(t, x.Warnings(), 1)
	assert.Equal(t, "ansible_password is not honoured: sshnative logs in with keys and ssh-agent only (hosts db01, db02, db03, db04, db05, db06, db07, db08, db09, db10 and 15 more)", x.Warnings()[0])
}

// The implicit localhost is not in "all" but can be targeted: become to
// another user set for it (group_vars/all) is a warning at load, as for a
// listed local host, and the host is FAILED.
func TestBecomeOnTheImplicitLocalhostIsWarned(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hosts"), "[web]\nweb1 ansible_host=web1.invalid\n")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "group_vars"), 0o700))
	writeFile(t, filepath.Join(dir, "group_vars", "all.yml"), "ansible_become: true\nansible_become_user: exe-nobody-else\nansible_password: secret\n")
	inv, err := inventory.Load(filepath.Join(dir, "hosts"))
	require.NoError(t, err)
	x := newExec(t, sshnative.Config{Inventory: inv, SSH: sshnative.SSHOptions{SSHConfig: "none", NoAgent: true}})
	assert.Equal(t, []string{
		"ansible_password is not honoured: sshnative logs in with keys and ssh-agent only (host web1)",
		"ansible_become to exe-nobody-else on a local connection is not supported by sshnative: these hosts are FAILED (hosts localhost, 127.0.0.1, ::1)",
	}, x.Warnings())
	ev := collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), []string{"localhost"}, exe.ExecuteArgs{Cmd: "true"}, emit)
	})["localhost"]
	assert.Equal(t, exe.HostFailed, ev.Status)
	assert.Contains(t, ev.Msg, "become exe-nobody-else is not supported on a local connection")
}

// ansible_connection names a connection plugin as Ansible resolves it:
// ansible.builtin. and ansible.legacy. forms, paramiko for paramiko_ssh.
func TestConnectionPluginNames(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	var inv strings.Builder
	for _, c := range []string{"ssh", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.legacy.ssh",
		"ansible.builtin.paramiko_ssh", "ansible.builtin.paramiko", "ansible.builtin.smart", "ansible.builtin.local", "ansible.legacy.local", "LOCAL"} {
		fmt.Fprintf(&inv, "%s ansible_host=127.0.0.1 ansible_port=%d ansible_connection=%s\n", c, s.Port, c)
	}
	x := newInvExec(t, inv.String(), sshnative.SSHOptions{User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}})
	assert.Equal(t, []string{
		"ansible_connection=ansible.builtin.paramiko is not supported by sshnative (ssh and local are): these hosts are UNREACHABLE (host ansible.builtin.paramiko)",
		"ansible_connection=ansible.builtin.smart is not supported by sshnative (ssh and local are): these hosts are UNREACHABLE (host ansible.builtin.smart)",
		"ansible_connection=LOCAL is not supported by sshnative (ssh and local are): these hosts are UNREACHABLE (host LOCAL)",
	}, x.Warnings())
	hosts, err := x.Match(context.Background(), "all")
	require.NoError(t, err)
	evs := collect(t, func(emit exe.Emit) error {
		return x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: "echo ${SSH_CONNECTION:-local}"}, emit)
	})
	for _, h := range hosts {
		switch h {
		case "ansible.builtin.paramiko", "ansible.builtin.smart", "LOCAL":
			assert.Equal(t, exe.HostUnreachable, evs[h].Status, h)
		case "ansible.builtin.local", "ansible.legacy.local":
			require.Equal(t, exe.HostChanged, evs[h].Status, "%s: %s", h, evs[h].Msg)
			assert.Equal(t, "local\n", evs[h].Exec.Stdout, h)
		default:
			require.Equal(t, exe.HostChanged, evs[h].Status, "%s: %s", h, evs[h].Msg)
			assert.Contains(t, evs[h].Exec.Stdout, fmt.Sprintf(" %d\n", s.Port), h)
		}
	}
}
