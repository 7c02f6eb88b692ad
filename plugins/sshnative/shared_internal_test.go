package sshnative

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedInventory has hosts that differ from the first pair in one
// setting each that their ssh arguments, trust or become are made from,
// and a pair alike (a1, a2).
const sharedInventory = `
[alike]
a1 ansible_host=10.0.0.1
a2 ansible_host=10.0.0.2
[alike:vars]
ansible_user=ops
ansible_port=2200
ansible_become=true
[each]
port ansible_port=2201
user ansible_user=other
keyfile ansible_private_key_file=/keys/one
timeout ansible_ssh_timeout=7
checking ansible_host_key_checking=false
checking-on ansible_host_key_checking=true
sshargs ansible_ssh_args="-o IdentitiesOnly=yes -i /keys/two"
common ansible_ssh_common_args="-o StrictHostKeyChecking=accept-new"
extra ansible_ssh_extra_args="-o UserKnownHostsFile=/tmp/kh"
jumped ansible_ssh_extra_args="-J ops@bastion:2022"
configured
become-user ansible_become=true ansible_become_user=app
become-flags ansible_become=true ansible_become_flags="-H -S"
become-exe ansible_become=true ansible_become_exe="/usr/bin/sudo"
become-pass ansible_become=true ansible_become_password=secret
become-su ansible_become=true ansible_become_method=su
same-user ansible_user=root ansible_become=true
`

// TestSharedSetupsMatchUnshared sets every host up in one view, where
// hosts alike share their ssh arguments, trust and become, and requires
// each setup to be what resolving the host alone gives; a1 and a2 must
// share.
func TestSharedSetupsMatchUnshared(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	require.NoError(t, os.WriteFile(cfg, []byte("Host configured\n  Port 2300\n  IdentityFile /keys/three\n  ServerAliveInterval 9\n  ProxyJump hop1,hop2\n"), 0o600))
	inv, err := inventory.Parse(strings.NewReader(sharedInventory), "hosts.ini")
	require.NoError(t, err)
	x, err := New(Config{Inventory: inv, SSH: SSHOptions{SSHConfig: cfg, NoAgent: true}})
	require.NoError(t, err)
	defer x.Close()

	v := x.view()
	for _, name := range inv.Hosts() {
		h, ok := inv.HostVars(name)
		require.True(t, ok, name)
		c, err := x.hostConn(v, h)
		require.NoError(t, err, name)
		got := c.(*sshConn)

		s, err := settingsOf(inventory.VarsOf(inv.Host(name)), nil)
		require.NoError(t, err, name)
		want, err := x.resolver.resolve(name, s, s.User)
		require.NoError(t, err, name)
		wantBecome, err := newBecome(s, s.User)
		require.NoError(t, err, name)
		assert.Equal(t, want, &got.ep, name)
		assert.Equal(t, want.key(), got.ep.key(), name)
		assert.Equal(t, wantBecome, got.become, name)
	}

	conn := func(name string) *sshConn {
		h, _ := inv.HostVars(name)
		c, err := x.hostConn(v, h)
		require.NoError(t, err)
		return c.(*sshConn)
	}
	a1, a2 := conn("a1"), conn("a2")
	assert.NotEqual(t, a1.ep.hostname, a2.ep.hostname)
	assert.Same(t, a1.ep.trust, a2.ep.trust, "hosts alike share one trust")
	assert.Same(t, a1.become, a2.become, "hosts alike share one become")
	hop := conn("configured").ep.jump
	require.NotNil(t, hop)
	assert.Equal(t, "hop2", hop.alias)
	assert.Equal(t, "hop1", hop.jump.alias)
	assert.Same(t, hop.trust, hop.jump.trust, "jump hosts share their trust too")
}

// TestSettingsReadAsHost requires a host's settings read through
// inventory.HostVars, with ansible.cfg's defaults below its variables, to
// be those of the host's resolved variables merged over the defaults (a
// variable set to null leaves the default), as they were read before
// HostVars.
func TestSettingsReadAsHost(t *testing.T) {
	inv, err := inventory.Parse(strings.NewReader(sharedInventory+`
[nulls]
null-timeout ansible_ssh_timeout=None ansible_host_key_checking=None
null-user ansible_user=None ansible_port=None
[nulls:vars]
ansible_ssh_host_key_checking=true
`), "hosts.ini")
	require.NoError(t, err)
	for _, defaults := range []map[string]string{nil, {
		"ansible_ssh_timeout": "9", "ansible_host_key_checking": "false", "ansible_user": "dflt",
		"ansible_port": "2022", "ansible_become": "true", "ansible_become_flags": "-H",
	}} {
		for _, name := range inv.Hosts() {
			h := inv.Host(name)
			merged := map[string]any{}
			for k, v := range defaults {
				merged[k] = v
			}
			for k, v := range h.Vars {
				if v != nil {
					merged[k] = v
				}
			}
			want, wantErr := settingsOf(inventory.VarsOf(&inventory.Host{Name: h.Name, Vars: merged}), nil)
			hv, ok := inv.HostVars(name)
			require.True(t, ok)
			got, err := settingsOf(hv, anyDefaults(defaults))
			assert.Equal(t, want, got, "%s %v", name, defaults)
			assert.Equal(t, wantErr, err, "%s %v", name, defaults)
		}
	}
}
