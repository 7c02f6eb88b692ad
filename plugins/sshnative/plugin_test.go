package sshnative_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigFromSection(t *testing.T) {
	cfg, unknown, err := sshnative.ConfigFromSection(map[string]string{
		"connect_timeout": "3s", "remote_user": "ops", "concurrency": "7", "other": "x",
		"private_key_file": "/k/a, /k/b", "host_key_checking": "no", "command_timeout": "120", "kill_grace": "500ms"})
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, cfg.SSH.ConnectTimeout)
	assert.Equal(t, "ops", cfg.SSH.User)
	assert.Equal(t, 7, cfg.Forks)
	assert.Equal(t, []string{"/k/a", "/k/b"}, cfg.SSH.KeyFiles)
	assert.True(t, cfg.SSH.InsecureIgnoreHostKey)
	assert.Equal(t, 120*time.Second, cfg.CommandTimeout)
	assert.Equal(t, 500*time.Millisecond, cfg.KillGrace)
	assert.Equal(t, sshnative.DefaultOutputCap, cfg.OutputCap, "defaults for what is not given")
	assert.False(t, cfg.SSH.NoAgent)
	assert.Equal(t, []string{"other"}, unknown)

	_, _, err = sshnative.ConfigFromSection(map[string]string{"keepalive": "soon"})
	assert.EqualError(t, err, `[sshnative] keepalive: "soon" is not a duration (e.g. 30s, 5m, 7d, or seconds)`)
	assert.True(t, errors.Is(err, exe.ErrInvalid))
	_, _, err = sshnative.ConfigFromSection(map[string]string{"kill_grace": "0"})
	assert.EqualError(t, err, `[sshnative] kill_grace: must be more than 0 (a process group gets this long after SIGHUP and after SIGTERM)`)

	inv := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb[1:x]\n"), 0o600))
	_, _, err = sshnative.ConfigFromSection(map[string]string{"inventory": inv})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "[sshnative] inventory: ")
}

// The Plugin is what the plugin process serves: configured from the section
// the server sends, it refuses a bad section and then runs operations.
func TestPluginConfigure(t *testing.T) {
	p := &sshnative.Plugin{}
	assert.ErrorIs(t, p.Health(context.Background()), exe.ErrUnavailable)
	require.Error(t, p.Configure(context.Background(), map[string]string{"output_cap": "0"}))
	require.NoError(t, p.Configure(context.Background(), map[string]string{"concurrency": "2"}))
	hosts, err := p.Match(context.Background(), "*")
	require.NoError(t, err)
	assert.Equal(t, []string{"localhost"}, hosts)
}

// ansible.cfg's settings apply below the [sshnative] options and below
// every host's variables; ansible_config = none ignores the file.
func TestConfigFromSectionReadsAnsibleConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hosts"), []byte("[web]\nweb1\n"), 0o600))
	acfg := filepath.Join(dir, "ansible.cfg")
	require.NoError(t, os.WriteFile(acfg, []byte(`[defaults]
inventory = hosts
remote_user = deploy
remote_port = 2222
private_key_file = keys/id
timeout = 7
host_key_checking = False
[privilege_escalation]
become = true
become_user = app
become_ask_pass = true
[ssh_connection]
ssh_common_args = -o ProxyJump=bastion
`), 0o600))
	cfg, _, err := sshnative.ConfigFromSection(map[string]string{"ansible_config": acfg})
	require.NoError(t, err)
	assert.Equal(t, acfg, cfg.AnsibleConfig)
	assert.Equal(t, "deploy", cfg.SSH.User)
	assert.Equal(t, 7*time.Second, cfg.SSH.ConnectTimeout)
	assert.False(t, cfg.SSH.InsecureIgnoreHostKey, "only the hosts that do not say otherwise")
	assert.Equal(t, map[string]string{
		"ansible_port": "2222", "ansible_private_key_file": filepath.Join(dir, "keys/id"), "ansible_host_key_checking": "false",
		"ansible_become": "true", "ansible_become_user": "app", "ansible_ssh_common_args": "-o ProxyJump=bastion",
	}, cfg.SSH.HostDefaults)
	require.NotNil(t, cfg.Inventory, "ansible.cfg's inventory, relative to its directory")
	hosts, err := cfg.Inventory.Match("web")
	require.NoError(t, err)
	assert.Equal(t, []string{"web1"}, hosts)
	assert.Equal(t, []string{
		acfg + ": host_key_checking = False: SSH host keys are NOT verified for hosts that do not set ansible_host_key_checking",
		acfg + ": become_ask_pass is not honoured: sshnative cannot ask for a password; set ansible_become_password for the hosts that need one",
	}, cfg.Warnings)

	// exed.conf's own options win.
	cfg, _, err = sshnative.ConfigFromSection(map[string]string{"ansible_config": acfg, "remote_user": "ops",
		"connect_timeout": "3s", "host_key_checking": "true", "inventory": filepath.Join(dir, "hosts")})
	require.NoError(t, err)
	assert.Equal(t, "ops", cfg.SSH.User)
	assert.Equal(t, 3*time.Second, cfg.SSH.ConnectTimeout)
	assert.NotContains(t, cfg.SSH.HostDefaults, "ansible_host_key_checking")

	cfg, _, err = sshnative.ConfigFromSection(map[string]string{"ansible_config": "none"})
	require.NoError(t, err)
	assert.Empty(t, cfg.AnsibleConfig)
	assert.Nil(t, cfg.SSH.HostDefaults)

	// Ansible's environment variables are not read: say so.
	t.Setenv("ANSIBLE_REMOTE_USER", "envuser")
	t.Setenv("ANSIBLE_BECOME_USER", "envapp")
	t.Setenv("ANSIBLE_NOCOLOR", "1")
	cfg, _, err = sshnative.ConfigFromSection(map[string]string{"ansible_config": "none"})
	require.NoError(t, err)
	assert.Equal(t, []string{"ANSIBLE_BECOME_USER, ANSIBLE_REMOTE_USER set in exed's environment: not honoured by sshnative; put the settings in ansible.cfg"}, cfg.Warnings)
	os.Unsetenv("ANSIBLE_REMOTE_USER")
	os.Unsetenv("ANSIBLE_BECOME_USER")

	_, _, err = sshnative.ConfigFromSection(map[string]string{"ansible_config": filepath.Join(dir, "nope.cfg")})
	assert.ErrorContains(t, err, "[sshnative] ansible_config: ansible.cfg: open "+filepath.Join(dir, "nope.cfg"))

	// Without ansible_config, Ansible's search order: ./ansible.cfg here.
	t.Chdir(dir)
	t.Setenv("ANSIBLE_CONFIG", "")
	os.Unsetenv("ANSIBLE_CONFIG")
	cfg, _, err = sshnative.ConfigFromSection(map[string]string{})
	require.NoError(t, err)
	assert.Equal(t, acfg, cfg.AnsibleConfig)
}
