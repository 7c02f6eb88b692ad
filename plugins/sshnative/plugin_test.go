package sshnative_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
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
	_, ok := p.MatchVersion()
	assert.False(t, ok, "not configured: no answers to keep")
	require.Error(t, p.Configure(context.Background(), map[string]string{"output_cap": "0"}))
	require.NoError(t, p.Configure(context.Background(), map[string]string{"concurrency": "2"}))
	hosts, err := p.Match(context.Background(), "*")
	require.NoError(t, err)
	assert.Equal(t, []string{"localhost"}, hosts)
	// The server keeps its Match answers until it configures it again.
	v1, ok := p.MatchVersion()
	assert.True(t, ok)
	require.NoError(t, p.Configure(context.Background(), map[string]string{"concurrency": "2"}))
	v2, ok := p.MatchVersion()
	assert.True(t, ok)
	assert.Greater(t, v2, v1, "a reload is a new version")
	// The server asks the plugin to validate deploys only.
	assert.True(t, p.Validates(exe.OpDeploy))
	for _, op := range []exe.Operate{exe.OpPing, exe.OpFacter, exe.OpService, exe.OpExecute, exe.OpTask} {
		assert.False(t, p.Validates(op), op)
	}
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

// With no inventory configured, sshnative reads Ansible's default
// inventory, as ansible does without -i; without that file, its own
// default: localhost, listed, with a local connection.
func TestDefaultInventoryIsAnsibles(t *testing.T) {
	testenv.NeedBinary(t, "ansible-config")
	dir := t.TempDir()
	acfg := filepath.Join(dir, "ansible.cfg")
	require.NoError(t, os.WriteFile(acfg, []byte("[defaults]\nremote_user = deploy\n"), 0o600))
	c := exec.Command("ansible-config", "dump")
	c.Dir = dir
	c.Env = append(os.Environ(), "ANSIBLE_CONFIG="+acfg)
	out, err := c.Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), "DEFAULT_HOST_LIST(default) = ['"+*sshnative.DefaultHostList+"']")

	hosts := filepath.Join(dir, "hosts")
	require.NoError(t, os.WriteFile(hosts, []byte("[web]\nweb1\n"), 0o600))
	saved := *sshnative.DefaultHostList
	t.Cleanup(func() { *sshnative.DefaultHostList = saved })
	*sshnative.DefaultHostList = hosts
	for _, section := range []map[string]string{{"ansible_config": "none"}, {"ansible_config": acfg}} {
		cfg, _, err := sshnative.ConfigFromSection(section)
		require.NoError(t, err)
		require.NotNil(t, cfg.Inventory, section)
		got, err := cfg.Inventory.Match("all")
		require.NoError(t, err)
		assert.Equal(t, []string{"web1"}, got, section)
		assert.Contains(t, cfg.Warnings, "no inventory configured ([sshnative] inventory, ansible.cfg's inventory): reading Ansible's default, "+hosts)
	}

	*sshnative.DefaultHostList = filepath.Join(dir, "missing")
	cfg, _, err := sshnative.ConfigFromSection(map[string]string{"ansible_config": "none"})
	require.NoError(t, err)
	assert.Nil(t, cfg.Inventory, "the executor then uses inventory.Default()")
}

// The inventory is read as ansible run in exed's working directory reads
// it: a relative source from there, and that directory's group_vars/ and
// host_vars/ as the playbook directory's (corpus case 37-playbook-dir
// compares the rule with Ansible).
func TestInventoryFromTheWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"inv/hosts":             "[web]\nweb1\n",
		"inv/group_vars/all":    "ansible_user: from-inventory\nansible_port: 2200\n",
		"group_vars/all.yml":    "ansible_user: deploy\n",
		"host_vars/web1.yml":    "ansible_host: 192.0.2.1\n",
		"elsewhere/placeholder": "",
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	t.Chdir(dir)
	cfg, _, err := sshnative.ConfigFromSection(map[string]string{"inventory": "inv/hosts", "ansible_config": "none"})
	require.NoError(t, err)
	c, err := cfg.Inventory.Host("web1").Conn()
	require.NoError(t, err)
	assert.Equal(t, "deploy@192.0.2.1:2200", fmt.Sprintf("%s@%s:%d", c.User, c.Address, c.Port))

	t.Chdir(filepath.Join(dir, "elsewhere"))
	cfg, _, err = sshnative.ConfigFromSection(map[string]string{"inventory": "../inv/hosts", "ansible_config": "none"})
	require.NoError(t, err)
	c, err = cfg.Inventory.Host("web1").Conn()
	require.NoError(t, err)
	assert.Equal(t, "from-inventory@web1:2200", fmt.Sprintf("%s@%s:%d", c.User, c.Address, c.Port))
}
