package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "exed.conf")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestDefaults(t *testing.T) {
	c := config.Default()
	assert.Equal(t, "127.0.0.1", c.API.ListenAddr)
	assert.Equal(t, 16808, c.API.ListenPort)
	assert.Equal(t, "sshnative", c.Runner.Executor)
	assert.Equal(t, runtime.NumCPU(), c.Runner.Concurrency)
	assert.Equal(t, 7*24*time.Hour, c.Runner.JobTTL)
	assert.Equal(t, exeredis.DefaultPrefix, c.Runner.RedisPrefix)
	cwd, err := os.Getwd()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cwd, "state"), c.Runner.StateDir)
	assert.True(t, c.API.Loopback())
}

func TestSeedStyleFile(t *testing.T) {
	p := write(t, `
[api]
listen_addr = "0.0.0.0"
listen_port = 8080
pid_file = '/run/exed.pid'

[runner]
concurrency = 8
modules = /opt/exed/modules
job_ttl = 3d
shutdown_grace = 90s
state_dir = /var/lib/exed

[log]
log_level = DEBUG
error_log = /var/log/exed/error.log  ; where errors go

[sshnative]
command_timeout = 120
`)
	c, warnings, err := config.Load(p)
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, "0.0.0.0", c.API.ListenAddr)
	assert.False(t, c.API.Loopback())
	assert.Equal(t, 8080, c.API.ListenPort)
	assert.Equal(t, "/run/exed.pid", c.API.PidFile)
	assert.Equal(t, 8, c.Runner.Concurrency)
	assert.Equal(t, "/opt/exed/modules", c.Runner.Modules)
	assert.Equal(t, 72*time.Hour, c.Runner.JobTTL)
	assert.Equal(t, 90*time.Second, c.Runner.ShutdownGrace)
	assert.Equal(t, "/var/lib/exed", c.Runner.StateDir)
	assert.Equal(t, "debug", c.Log.Level)
	assert.Equal(t, "/var/log/exed/error.log", c.Log.ErrorLog)
	assert.Equal(t, map[string]string{"command_timeout": "120"}, c.Sections["sshnative"], "the plugin's section, for the plugin")
}

func TestUnknownOptionsWarn(t *testing.T) {
	c, warnings, err := config.Load(write(t, "[api]\nlisten_prot = 1\n[myplugin]\na = 'b'\nempty =\n"))
	require.NoError(t, err)
	assert.Equal(t, 16808, c.API.ListenPort)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], `unknown option "listen_prot" in [api]`)
	assert.Equal(t, map[string]string{"a": "b"}, c.Sections["myplugin"], "a plugin's section is kept for it, unquoted")
}

func TestBadValuesNameTheOption(t *testing.T) {
	for text, want := range map[string]string{
		"[api]\nlisten_port = http\n":       `[api] listen_port: "http" is not a port number`,
		"[api]\nlisten_port = 70000\n":      `[api] listen_port: "70000" is not a port number`,
		"[runner]\nconcurrency = 0\n":       `[runner] concurrency: "0" is not a whole number of at least 1`,
		"[runner]\njob_ttl = forever\n":     `[runner] job_ttl: "forever" is not a duration`,
		"[runner]\nexecutor = ../evil\n":    `[runner] executor: "../evil" is not a plugin name`,
		"[runner]\nredis_url = localhost\n": `[runner] redis_url: "localhost" is not a URL`,
		"[runner]\nredis_prefix = a b\n":    `[runner] redis_prefix: "a b" is not a key prefix`,
		"[log]\nlog_level = loud\n":         `[log] log_level: "loud" is not a log level`,
		"[api]\nallow_insecure = perhaps\n": `[api] allow_insecure: "perhaps" is not a boolean`,
		"[runner]\nmax_job_bytes = lots\n":  `[runner] max_job_bytes: "lots" is not a size (bytes, or with K, M, G, T or KiB, MiB, GiB, TiB, e.g. 2GiB)`,
	} {
		_, _, err := config.Load(write(t, text))
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
	_, _, err := config.Load(filepath.Join(t.TempDir(), "missing.conf"))
	assert.Error(t, err)
}

func TestTokens(t *testing.T) {
	p := write(t, "# operators\nalpha\n\n  beta  \n")
	tokens, _, err := config.API{AuthTokenFile: p}.Tokens()
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha", "beta"}, tokens)
	_, _, err = config.API{AuthTokenFile: write(t, "# none\n")}.Tokens()
	assert.ErrorContains(t, err, "holds no token")
}

// A token file that group or others can write is refused, naming the
// file and its mode; one that others can read, or that holds short
// tokens, is warned about without showing a token.
func TestTokenFileChecks(t *testing.T) {
	long1, long2 := "0123456789abcdef0123", "fedcba9876543210"
	for _, mode := range []os.FileMode{0o666, 0o622, 0o620, 0o602, 0o660, 0o777} {
		p := write(t, long1+"\n")
		require.NoError(t, os.Chmod(p, mode))
		tokens, _, err := config.API{AuthTokenFile: p}.Tokens()
		assert.Nil(t, tokens)
		require.Error(t, err, "%04o", mode)
		assert.Equal(t, fmt.Sprintf("[api] auth_token_file: %s is writable by group or others (mode %04o): anyone who can write it can add a token; chmod go-w %s", p, mode, p), err.Error())
	}

	p := write(t, "# operators\n"+long1+"\n\n"+long2+"\n")
	tokens, warnings, err := config.API{AuthTokenFile: p}.Tokens()
	require.NoError(t, err)
	assert.Equal(t, []string{long1, long2}, tokens)
	assert.Empty(t, warnings, "0600 and tokens of 16 or more: nothing to say")
	require.NoError(t, os.Chmod(p, 0o640))
	_, warnings, err = config.API{AuthTokenFile: p}.Tokens()
	require.NoError(t, err)
	assert.Empty(t, warnings, "group-readable is how a service group is given the file")

	p = write(t, "# operators\n"+long1+"\n  s3cret  \n"+long2[:15]+"\n")
	require.NoError(t, os.Chmod(p, 0o644))
	tokens, warnings, err = config.API{AuthTokenFile: p}.Tokens()
	require.NoError(t, err)
	assert.Equal(t, []string{long1, "s3cret", long2[:15]}, tokens, "short tokens still work")
	assert.Equal(t, []string{
		fmt.Sprintf("[api] auth_token_file: %s is readable by others (mode 0644): every local user can read the tokens; chmod o-r %s", p, p),
		fmt.Sprintf("[api] auth_token_file: %s line 3: a token of 6 characters is easy to guess; use at least 16 random ones (e.g. openssl rand -hex 32)", p),
		fmt.Sprintf("[api] auth_token_file: %s line 4: a token of 15 characters is easy to guess; use at least 16 random ones (e.g. openssl rand -hex 32)", p),
	}, warnings)
	for _, w := range warnings {
		assert.NotContains(t, w, "s3cret")
		assert.NotContains(t, w, long2[:15])
	}
}

// allow_insecure is warned about when it takes effect: no tokens on an
// address others can reach.
func TestAccessWarnings(t *testing.T) {
	open := config.API{ListenAddr: "0.0.0.0", ListenPort: 16808, AllowInsecure: true}
	assert.Equal(t, []string{"[api] allow_insecure = true: listening on 0.0.0.0:16808 WITHOUT AUTHENTICATION: anyone who can reach it can run commands on every host of the inventory; set auth_token_file"},
		open.AccessWarnings(false))
	v6 := config.API{ListenAddr: "::", ListenPort: 1, AllowInsecure: true}
	assert.Len(t, v6.AccessWarnings(false), 1)
	assert.Contains(t, v6.AccessWarnings(false)[0], "[::]:1 WITHOUT AUTHENTICATION")
	assert.Empty(t, open.AccessWarnings(true), "tokens are required")
	loop := config.API{ListenAddr: "127.0.0.1", ListenPort: 16808, AllowInsecure: true}
	assert.Empty(t, loop.AccessWarnings(false), "loopback: it has no effect")
	off := config.API{ListenAddr: "0.0.0.0", ListenPort: 16808}
	assert.Empty(t, off.AccessWarnings(false), "refused at start instead")
}

func TestMaxJobBytes(t *testing.T) {
	c, _, err := config.Load(write(t, "[runner]\nmax_jobs = 5\n"))
	require.NoError(t, err)
	assert.Zero(t, c.Runner.MaxJobBytes, "unset: the memory store's default")
	for v, want := range map[string]int64{
		"1048576": 1 << 20, "512MiB": 512 << 20, "512 MiB": 512 << 20, "2G": 2 << 30, "2gib": 2 << 30,
		"64k": 64 << 10, "1T": 1 << 40, `"3M"`: 3 << 20,
	} {
		c, _, err := config.Load(write(t, "[runner]\nmax_job_bytes = "+v+"\n"))
		require.NoError(t, err, v)
		assert.Equal(t, want, c.Runner.MaxJobBytes, v)
	}
	for _, v := range []string{"0", "-1", "1.5G", "2GB", "10P", "M", "9999999999T", "12 parsecs"} {
		_, _, err := config.Load(write(t, "[runner]\nmax_job_bytes = "+v+"\n"))
		assert.ErrorContains(t, err, "[runner] max_job_bytes: ", v)
	}
}

// A relative state_dir means the same to the server and to its plugins.
func TestStateDirIsAbsolute(t *testing.T) {
	c, _, err := config.Load(write(t, "[runner]\nstate_dir = run/exed\n"))
	require.NoError(t, err)
	cwd, err := os.Getwd()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cwd, "run", "exed"), c.Runner.StateDir)
}
