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
		"[api]\nlisten_port = http\n":                   `[api] listen_port: "http" is not a port number`,
		"[api]\nlisten_port = 70000\n":                  `[api] listen_port: "70000" is not a port number`,
		"[runner]\nconcurrency = 0\n":                   `[runner] concurrency: "0" is not a whole number of at least 1`,
		"[runner]\njob_ttl = forever\n":                 `[runner] job_ttl: "forever" is not a duration`,
		"[runner]\nexecutor = ../evil\n":                `[runner] executor: "../evil" is not a plugin name`,
		"[runner]\nredis_url = localhost\n":             `[runner] redis_url: "localhost" is not a URL`,
		"[runner]\nredis_prefix = a b\n":                `[runner] redis_prefix: "a b" is not a key prefix`,
		"[log]\nlog_level = loud\n":                     `[log] log_level: "loud" is not a log level`,
		"[log]\nlog_format = xml\n":                     `[log] log_format: "xml" is not a log format (text, json)`,
		"[api]\nallow_insecure = perhaps\n":             `[api] allow_insecure: "perhaps" is not a boolean`,
		"[runner]\nmax_job_bytes = lots\n":              `[runner] max_job_bytes: "lots" is not a size (bytes, or with K, M, G, T or KiB, MiB, GiB, TiB, e.g. 2GiB)`,
		"[api]\ntls_cert = c.pem\n":                     "[api] tls_cert and tls_key: set both to serve HTTPS, or neither",
		"[api]\ntls_client_ca = ca.pem\n":               "[api] tls_client_ca needs tls_cert and tls_key",
		"[worker]\nmetrics_address = 9816\n":            `[worker] metrics_address: "9816" is not host:port`,
		"[worker]\nmetrics_address = 127.0.0.1:99999\n": `[worker] metrics_address: "99999" is not a port number`,
		"[worker]\nmetrics_address = a/b:9816\n":        `[worker] metrics_address: "a/b" is not an IP address or host name`,
	} {
		_, _, err := config.Load(write(t, text))
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
	_, _, err := config.Load(filepath.Join(t.TempDir(), "missing.conf"))
	assert.Error(t, err)
}

// [worker] metrics_address is host:port; it is off by default, and only
// a loopback host keeps it to this machine.
func TestWorkerMetricsAddress(t *testing.T) {
	assert.Empty(t, config.Default().Worker.MetricsAddress, "off by default")
	for addr, loopback := range map[string]bool{
		"127.0.0.1:9816": true, "localhost:9816": true, "[::1]:9816": true,
		"0.0.0.0:9816": false, ":9816": false, "[::]:9816": false, "worker1.example.com:9816": false,
	} {
		c, warnings, err := config.Load(write(t, "[worker]\nmetrics_address = "+addr+"\n"))
		require.NoError(t, err, addr)
		assert.Empty(t, warnings, addr)
		assert.Equal(t, addr, c.Worker.MetricsAddress)
		assert.Equal(t, loopback, c.Worker.MetricsLoopback(), addr)
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

// TestStructureErrorsNameTheLine: what Python's configparser (the seed's
// reader) refuses about a file's structure, exed refuses too, naming the
// file, the line and the option or section, where it used to take an
// option outside any section for a DEFAULT section it ignored, and the
// last of a repeated option or section.
func TestStructureErrorsNameTheLine(t *testing.T) {
	for text, want := range map[string]string{
		// configparser: MissingSectionHeaderError.
		"listen_port=16919\n":                "1: listen_port: option outside any section",
		"# exed\n\nlisten_port = 1\n[api]\n": "3: listen_port: option outside any section",
		// DuplicateOptionError, in exed's sections and plugins' alike,
		// an empty value included.
		"[api]\nlisten_port = 16919\nlisten_port = 16921\n":          "3: [api] listen_port: repeated (first at line 2)",
		"[api]\nlisten_port =\nlisten_addr = ::1\nlisten_port = 1\n": "4: [api] listen_port: repeated (first at line 2)",
		"[sshnative]\ninventory = a\n; b\ninventory: b\n":            "4: [sshnative] inventory: repeated (first at line 2)",
		// DuplicateSectionError.
		"[api]\nlisten_port = 16919\n[api]\nlisten_port = 16921\n": "3: [api]: repeated (first at line 1)",
		"[log]\n[myplugin]\n[runner]\n[myplugin]\n":                "4: [myplugin]: repeated (first at line 2)",
		// Options configparser would give every section.
		"[DEFAULT]\nlog_level = debug\n": "1: [DEFAULT]: exed does not give a DEFAULT section's options to the other sections",
		// Lines that are neither: configparser's ParsingError.
		"[api]\nserver_names = a,\n    b\n": `3: "b": not an option (key = value) nor a [section]`,
		"[api\nlisten_port = 1\n":           `1: "[api": a section header needs its closing ']'`,
		"[api] listen_port = 1\n":           `1: "[api] listen_port = 1": text after a section header`,
		"[]\n":                              "1: []: a section needs a name",
		"[api]\n = 1\n":                     `2: "= 1": an option needs a name before "="`,
	} {
		p := write(t, text)
		_, _, err := config.Load(p)
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), p+":"+want, text)
	}
}

// TestValueErrorsAndWarningsNameTheLine: a value that does not parse and
// an unknown option name their line too.
func TestValueErrorsAndWarningsNameTheLine(t *testing.T) {
	p := write(t, "[runner]\n\nworkers = 2\n[api]\n\nlisten_port = http\n")
	_, _, err := config.Load(p)
	assert.EqualError(t, err, p+`:6: [api] listen_port: "http" is not a port number (0-65535)`)
	p = write(t, "[api]\nlisten_port = 1\nlisten_prot = 2\n")
	_, warnings, err := config.Load(p)
	require.NoError(t, err)
	assert.Equal(t, []string{p + `:3: unknown option "listen_prot" in [api] ignored`}, warnings)
}

// TestSyntax: the syntax exed.conf has always been read with: comments,
// inline comments after a space, quotes, ':' as a delimiter, indented
// lines, a byte order mark and CRLF line ends.
func TestSyntax(t *testing.T) {
	c, warnings, err := config.Load(write(t, "\ufeff; exed\r\n[api]\r\n  listen_addr: 0.0.0.0 # everywhere\r\n"+
		"\tlisten_port = '8080' ; quoted\r\n  # indented comment\r\npid_file = \"/run/a;b#c.pid\"\r\n"+
		"[log]\nerror_log = /var/log/exed.log;x\naccess_log=\n[myplugin]\nkey = a = b\n"))
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, "0.0.0.0", c.API.ListenAddr)
	assert.Equal(t, 8080, c.API.ListenPort)
	assert.Equal(t, "/run/a;b#c.pid", c.API.PidFile, "'#' and ';' not after whitespace are the value's")
	assert.Equal(t, "/var/log/exed.log;x", c.Log.ErrorLog)
	assert.Empty(t, c.Log.AccessLog, "an empty value keeps the default")
	assert.Equal(t, map[string]string{"key": "a = b"}, c.Sections["myplugin"], "split at the first '='")
	assert.Equal(t, map[string]string{"error_log": "/var/log/exed.log;x"}, c.Sections["log"], "empty values are left out")
}
