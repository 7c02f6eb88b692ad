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
	assert.Equal(t, 7, cfg.Concurrency)
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
