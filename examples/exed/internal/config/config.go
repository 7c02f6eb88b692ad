// Package config reads exed.conf: the INI file of the original service, with
// its sections and option names, values quoted or not. Every option has a
// default, so no file at all gives the embedded default. A file whose
// structure Python's configparser (the original service's reader) refuses
// (an option outside any section, an option or a section given twice) is
// an error naming the file and line, and so is a value that does not
// parse, naming the option too; an unknown option is a warning.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/section"
)

// Config is exed's configuration.
type Config struct {
	API    API
	Runner Runner
	Log    Log
	Worker Worker
	// Path is the file the configuration came from ("" for defaults).
	Path string
	// Sections holds every section's key/values as written (unquoted,
	// empty values left out): a plugin receives its own section, and
	// sections of plugins exed does not know are kept only here.
	Sections map[string]map[string]string
}

// API is the [api] section.
type API struct {
	ListenAddr    string
	ListenPort    int
	PidFile       string
	AuthTokenFile string
	AllowInsecure bool
	// ServerNames are the host names clients reach the API by, besides
	// localhost and IP literals (transport/http Options.ServerNames).
	ServerNames  []string
	MaxBodyBytes int64
	SyncTimeout  time.Duration
	// UI serves the job dashboard at /ui/ (transport/http Options.UI).
	UI bool
	// TLSCert and TLSKey are the PEM files of the server's certificate
	// (its chain) and key: set both to serve HTTPS. TLSClientCA, a PEM
	// file of CA certificates, asks clients for a certificate and accepts
	// those it signed (mutual TLS).
	TLSCert, TLSKey, TLSClientCA string
}

// Runner is the [runner] section.
type Runner struct {
	Executor string
	// Concurrency is how many hosts one operation works on at once (the
	// seed's meaning: Ansible's --forks); Workers how many async jobs run
	// at once, per process.
	Concurrency int
	Workers     int
	// MaxTimeout is the longest "timeout" an async request may ask for.
	MaxTimeout time.Duration
	Modules    string
	RedisURL   string
	BrokerURL  string
	// RedisPrefix starts every key exed keeps in Redis, so that several
	// installations can share one Redis.
	RedisPrefix string
	QueueSize   int
	MaxJobs     int
	// MaxJobBytes is the memory store's budget for the jobs it keeps, in
	// bytes; 0: an eighth of the machine's (or cgroup's) memory.
	MaxJobBytes   int64
	JobTTL        time.Duration
	ShutdownGrace time.Duration
	// Lease is how long a worker's hold on a running job lasts without a
	// heartbeat (on Redis; with redis_url alone the API servers are the
	// workers): after one dies, its jobs fail as "worker lost" ("server
	// lost") within about this long. One cut off from Redis stops its jobs
	// a third of a lease before their leases may lapse (see
	// redis.DispatcherOptions.FenceMargin), so the lease also bounds the
	// Redis outage a running job outlives.
	Lease time.Duration
	// StateDir holds what plugins keep across their restarts and the
	// server's (the sshnative executor's journal of running commands),
	// one subdirectory per plugin.
	StateDir string
}

// Worker is the [worker] section: what `exed worker` serves besides
// running jobs.
type Worker struct {
	// MetricsAddress is the host:port where a worker serves GET
	// /metrics (Prometheus), with the [api] credentials and TLS files;
	// "" (the default) serves nothing.
	MetricsAddress string
}

// MetricsLoopback reports whether the metrics address only accepts local
// clients.
func (w Worker) MetricsLoopback() bool {
	host, _, _ := net.SplitHostPort(w.MetricsAddress)
	return isLoopback(host)
}

// Log is the [log] section.
type Log struct {
	Level string
	// Format is how the server's and the worker's log lines are written:
	// "text" (hclog's, one line per record) or "json" (one JSON object
	// per line, hclog's keys @timestamp, @level, @module, @message, then
	// the record's own).
	Format    string
	ErrorLog  string // "" = stderr
	AccessLog string // "" = stdout
	// AuditLog is the file of the audit trail (JSON lines); "" = none.
	AuditLog string
}

// Default returns the embedded default configuration.
func Default() *Config {
	cwd, _ := os.Getwd()
	return &Config{
		API: API{ListenAddr: "127.0.0.1", ListenPort: 16808, MaxBodyBytes: 1 << 20, SyncTimeout: 60 * time.Second, UI: true},
		Runner: Runner{Executor: "sshnative", Concurrency: 50, Workers: exe.DefaultJobsAtOnce, MaxTimeout: exe.DefaultMaxTimeout,
			Modules:   cwd + "/modules",
			QueueSize: 1024, MaxJobs: 10000, JobTTL: 7 * 24 * time.Hour, ShutdownGrace: 30 * time.Second,
			Lease: 30 * time.Second, RedisPrefix: "exe:", StateDir: cwd + "/state"},
		Log: Log{Level: "info", Format: "text"},
	}
}

// option is one known option: where it lives and how it is parsed.
type option struct {
	section, key string
	set          func(c *Config, v string) error
}

var options = []option{
	{"api", "listen_addr", func(c *Config, v string) error { return setHost(&c.API.ListenAddr, v) }},
	{"api", "listen_port", func(c *Config, v string) error { return setPort(&c.API.ListenPort, v) }},
	{"api", "pid_file", func(c *Config, v string) error { c.API.PidFile = v; return nil }},
	{"api", "auth_token_file", func(c *Config, v string) error { c.API.AuthTokenFile = v; return nil }},
	{"api", "allow_insecure", func(c *Config, v string) error { return setBool(&c.API.AllowInsecure, v) }},
	{"api", "server_names", func(c *Config, v string) error { c.API.ServerNames = section.SplitList(v); return nil }},
	{"api", "max_body_bytes", func(c *Config, v string) error { return setInt64(&c.API.MaxBodyBytes, v, 1) }},
	{"api", "sync_timeout", func(c *Config, v string) error { return setDuration(&c.API.SyncTimeout, v) }},
	{"api", "tls_cert", func(c *Config, v string) error { c.API.TLSCert = v; return nil }},
	{"api", "tls_key", func(c *Config, v string) error { c.API.TLSKey = v; return nil }},
	{"api", "tls_client_ca", func(c *Config, v string) error { c.API.TLSClientCA = v; return nil }},
	{"api", "ui", func(c *Config, v string) error { return setBool(&c.API.UI, v) }},
	{"runner", "executor", func(c *Config, v string) error { return setName(&c.Runner.Executor, v) }},
	{"runner", "concurrency", func(c *Config, v string) error { return setInt(&c.Runner.Concurrency, v, 1) }},
	{"runner", "workers", func(c *Config, v string) error { return setInt(&c.Runner.Workers, v, 1) }},
	{"runner", "max_timeout", func(c *Config, v string) error { return setDuration(&c.Runner.MaxTimeout, v) }},
	{"runner", "modules", func(c *Config, v string) error { c.Runner.Modules = v; return nil }},
	{"runner", "redis_url", func(c *Config, v string) error { return setURL(&c.Runner.RedisURL, v) }},
	{"runner", "broker_url", func(c *Config, v string) error { return setURL(&c.Runner.BrokerURL, v) }},
	{"runner", "redis_prefix", func(c *Config, v string) error { return setKeyPrefix(&c.Runner.RedisPrefix, v) }},
	{"runner", "queue_size", func(c *Config, v string) error { return setInt(&c.Runner.QueueSize, v, 1) }},
	{"runner", "max_jobs", func(c *Config, v string) error { return setInt(&c.Runner.MaxJobs, v, 1) }},
	{"runner", "max_job_bytes", func(c *Config, v string) error { return setBytes(&c.Runner.MaxJobBytes, v) }},
	{"runner", "job_ttl", func(c *Config, v string) error { return setDuration(&c.Runner.JobTTL, v) }},
	{"runner", "shutdown_grace", func(c *Config, v string) error { return setDuration(&c.Runner.ShutdownGrace, v) }},
	{"runner", "lease", func(c *Config, v string) error { return setDuration(&c.Runner.Lease, v) }},
	{"runner", "state_dir", func(c *Config, v string) error { return setDir(&c.Runner.StateDir, v) }},
	{"log", "log_level", func(c *Config, v string) error { return setLevel(&c.Log.Level, v) }},
	{"log", "log_format", func(c *Config, v string) error { return setFormat(&c.Log.Format, v) }},
	{"log", "error_log", func(c *Config, v string) error { c.Log.ErrorLog = v; return nil }},
	{"log", "access_log", func(c *Config, v string) error { c.Log.AccessLog = v; return nil }},
	{"log", "audit_log", func(c *Config, v string) error { c.Log.AuditLog = v; return nil }},
	{"worker", "metrics_address", func(c *Config, v string) error { return setHostPort(&c.Worker.MetricsAddress, v) }},
}

// Load reads the file at path over the defaults; an empty value keeps the
// option's default. It returns warnings for unknown options of exed's own
// sections (a plugin's section is the plugin's to check), and an error
// naming the file and line for a file whose structure configparser would
// refuse (see parseINI), and the section and option too for a value that
// does not parse: "exed.conf:3: [api] listen_port: repeated (first at line
// 2)", "exed.conf:2: [api] listen_port: "http" is not a port number".
func Load(path string) (*Config, []string, error) {
	c := Default()
	c.Path = path
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := parseINI(path, text)
	if err != nil {
		return nil, nil, err
	}
	known := map[string]map[string]option{}
	for _, o := range options {
		if known[o.section] == nil {
			known[o.section] = map[string]option{}
		}
		known[o.section][o.key] = o
	}
	var warnings []string
	c.Sections = map[string]map[string]string{}
	for _, sec := range f.sections {
		name := sec.name
		values := map[string]string{}
		for _, o := range sec.options {
			if o.value != "" {
				values[o.key] = o.value
			}
		}
		c.Sections[name] = values
		opts, ok := known[name]
		if !ok {
			// A plugin's section: the server checks it names one.
			continue
		}
		for _, kv := range sec.options {
			o, ok := opts[kv.key]
			if !ok {
				warnings = append(warnings, fmt.Sprintf("%s:%d: unknown option %q in [%s] ignored", path, kv.line, kv.key, name))
				continue
			}
			if kv.value == "" {
				continue // an empty value keeps the default
			}
			if err := o.set(c, kv.value); err != nil {
				return nil, warnings, fmt.Errorf("%s:%d: [%s] %s: %w", path, kv.line, name, kv.key, err)
			}
		}
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		return nil, warnings, fmt.Errorf("%s: [api] tls_cert and tls_key: set both to serve HTTPS, or neither", path)
	}
	if c.API.TLSClientCA != "" && c.API.TLSCert == "" {
		return nil, warnings, fmt.Errorf("%s: [api] tls_client_ca needs tls_cert and tls_key: client certificates are asked for over HTTPS", path)
	}
	return c, warnings, nil
}

// TLS reports whether the API is served over HTTPS.
func (a API) TLS() bool { return a.TLSCert != "" }

// ServerSections are the sections exed itself reads; any other section
// belongs to a plugin of that name.
var ServerSections = map[string]bool{"api": true, "runner": true, "log": true, "worker": true}

// unquote trims v and strips one pair of matching quotes around it.
func unquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func setHost(dst *string, v string) error {
	if v == "" {
		return errors.New("an address is required")
	}
	if ip := net.ParseIP(v); ip == nil && strings.ContainsAny(v, " /:") {
		return fmt.Errorf("%q is not an IP address or host name", v)
	}
	*dst = v
	return nil
}

// setHostPort takes host:port, the host an IP address or a name ("" or
// "[::]" for every interface).
func setHostPort(dst *string, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:9816)", v)
	}
	var n int
	if err := setPort(&n, port); err != nil {
		return err
	}
	if host != "" {
		if err := setHost(&host, host); err != nil {
			return err
		}
	}
	*dst = v
	return nil
}

func setPort(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q is not a port number (0-65535)", v)
	}
	*dst = n
	return nil
}

func setInt(dst *int, v string, min int) error {
	n, err := section.ParseInt(v, min)
	if err == nil {
		*dst = n
	}
	return err
}

func setInt64(dst *int64, v string, min int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		return fmt.Errorf("%q is not a whole number of at least %d", v, min)
	}
	*dst = n
	return nil
}

// byteUnits are the units setBytes takes, all powers of 1024.
var byteUnits = map[string]int64{
	"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
}

// setBytes takes a size of at least 1 byte: a number of bytes, or one
// with a binary unit (512MiB, 2G, 64k).
func setBytes(dst *int64, v string) error {
	i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], strings.ToLower(strings.TrimSpace(v[i:]))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	mult, ok := byteUnits[unit]
	if err != nil || !ok || n < 1 || n > math.MaxInt64/mult {
		return fmt.Errorf("%q is not a size (bytes, or with K, M, G, T or KiB, MiB, GiB, TiB, e.g. 2GiB)", v)
	}
	*dst = n * mult
	return nil
}

func setBool(dst *bool, v string) error {
	b, err := section.ParseBool(v)
	if err == nil {
		*dst = b
	}
	return err
}

// setDuration takes a Go duration ("90s", "1h30m"), a number of days ("7d")
// or a plain number of seconds, as plugins' sections do (package section).
func setDuration(dst *time.Duration, v string) error {
	d, err := section.ParseDuration(v)
	if err == nil {
		*dst = d
	}
	return err
}

// setDir takes a directory, made absolute so that it means the same to
// the server and to the plugins it starts.
func setDir(dst *string, v string) error {
	abs, err := filepath.Abs(v)
	if err != nil {
		return err
	}
	*dst = abs
	return nil
}

func setName(dst *string, v string) error {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("%q is not a plugin name (a-z 0-9 _ -)", v)
		}
	}
	if v == "" {
		return errors.New("a plugin name is required")
	}
	*dst = v
	return nil
}

func setURL(dst *string, v string) error {
	if v != "" && !strings.Contains(v, "://") {
		return fmt.Errorf("%q is not a URL (e.g. redis://127.0.0.1:6379/0)", v)
	}
	*dst = v
	return nil
}

// setKeyPrefix takes a Redis key prefix: 1-64 of A-Z a-z 0-9 _ . : -, so
// that key names stay readable in redis-cli and free of spaces.
func setKeyPrefix(dst *string, v string) error {
	ok := v != "" && len(v) <= 64
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:-", r)) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%q is not a key prefix (1-64 of A-Z a-z 0-9 _ . : -)", v)
	}
	*dst = v
	return nil
}

func setLevel(dst *string, v string) error {
	switch strings.ToLower(v) {
	case "trace", "debug", "info", "warn", "warning", "error":
		*dst = strings.ToLower(v)
		return nil
	}
	return fmt.Errorf("%q is not a log level (trace, debug, info, warn, error)", v)
}

func setFormat(dst *string, v string) error {
	switch strings.ToLower(v) {
	case "text", "json":
		*dst = strings.ToLower(v)
		return nil
	}
	return fmt.Errorf("%q is not a log format (text, json)", v)
}

// AccessWarnings says when the API serves where others can reach it
// without protection: allow_insecure in effect with no credentials
// (haveAuth: tokens or client certificates), or bearer tokens sent over
// plain HTTP, where anyone on the network path can read and replay them.
func (a API) AccessWarnings(haveAuth bool) []string {
	if a.Loopback() {
		return nil
	}
	addr := net.JoinHostPort(a.ListenAddr, strconv.Itoa(a.ListenPort))
	if haveAuth && !a.TLS() {
		return []string{fmt.Sprintf("[api] listening on %s over PLAIN HTTP: bearer tokens and commands cross the network unencrypted, anyone on the path can read and replay them; set tls_cert and tls_key", addr)}
	}
	if !a.AllowInsecure || haveAuth {
		return nil
	}
	return []string{fmt.Sprintf("[api] allow_insecure = true: listening on %s WITHOUT AUTHENTICATION: anyone who can reach it can run commands on every host of the inventory; set auth_token_file",
		addr)}
}

// Loopback reports whether the listen address only accepts local clients.
func (a API) Loopback() bool { return isLoopback(a.ListenAddr) }

// isLoopback reports whether a listen host only accepts local clients.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
