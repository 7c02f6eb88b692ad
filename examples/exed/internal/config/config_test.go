package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/exe"
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
	assert.Equal(t, 50, c.Runner.Concurrency, "hosts at once: not the CPU count")
	assert.Equal(t, exe.DefaultJobsAtOnce, c.Runner.Workers, "jobs at once: not the CPU count")
	assert.Equal(t, exe.DefaultMaxTimeout, c.Runner.MaxTimeout)
	assert.Equal(t, 7*24*time.Hour, c.Runner.JobTTL)
	assert.Equal(t, exeredis.DefaultPrefix, c.Runner.RedisPrefix)
	cwd, err := os.Getwd()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cwd, "state"), c.Runner.StateDir)
	assert.True(t, c.API.Loopback())
	assert.Equal(t, "text", c.Log.Format)
}

func TestSeedStyleFile(t *testing.T) {
	p := write(t, `
[api]
listen_addr = "0.0.0.0"
listen_port = 8080
pid_file = '/run/exed.pid'

[runner]
concurrency = 8
workers = 200
max_timeout = 2h
modules = /opt/exed/modules
job_ttl = 3d
shutdown_grace = 90s
state_dir = /var/lib/exed

[log]
log_level = DEBUG
log_format = JSON
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
	assert.Equal(t, 200, c.Runner.Workers)
	assert.Equal(t, 2*time.Hour, c.Runner.MaxTimeout)
	assert.Equal(t, "/opt/exed/modules", c.Runner.Modules)
	assert.Equal(t, 72*time.Hour, c.Runner.JobTTL)
	assert.Equal(t, 90*time.Second, c.Runner.ShutdownGrace)
	assert.Equal(t, "/var/lib/exed", c.Runner.StateDir)
	assert.Equal(t, "debug", c.Log.Level)
	assert.Equal(t, "json", c.Log.Format)
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
		"[log]\nlog_format = xml\n":         `[log] log_format: "xml" is not a log format (text, json)`,
		"[api]\nallow_insecure = perhaps\n": `[api] allow_insecure: "perhaps" is not a boolean`,
		"[runner]\nmax_job_bytes = lots\n":  `[runner] max_job_bytes: "lots" is not a size (bytes, or with K, M, G, T or KiB, MiB, GiB, TiB, e.g. 2GiB)`,
		"[api]\ntls_cert = c.pem\n":         "[api] tls_cert and tls_key: set both to serve HTTPS, or neither",
		"[api]\ntls_client_ca = ca.pem\n":   "[api] tls_client_ca needs tls_cert and tls_key",
	} {
		_, _, err := config.Load(write(t, text))
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
	_, _, err := config.Load(filepath.Join(t.TempDir(), "missing.conf"))
	assert.Error(t, err)
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
	assert.Equal(t, []string{"[api] listening on 0.0.0.0:16808 over PLAIN HTTP: bearer tokens and commands cross the network unencrypted, anyone on the path can read and replay them; set tls_cert and tls_key"},
		open.AccessWarnings(true), "tokens without TLS off loopback")
	tls := open
	tls.TLSCert, tls.TLSKey = "cert.pem", "key.pem"
	assert.Empty(t, tls.AccessWarnings(true), "tokens over TLS")
	loop := config.API{ListenAddr: "127.0.0.1", ListenPort: 16808, AllowInsecure: true}
	assert.Empty(t, loop.AccessWarnings(false), "loopback: it has no effect")
	assert.Empty(t, loop.AccessWarnings(true), "loopback: plain HTTP stays on the machine")
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
