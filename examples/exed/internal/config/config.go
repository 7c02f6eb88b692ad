// Package config reads exed.conf: the INI file of the original service, with
// its sections and option names, values quoted or not. Every option has a
// default, so no file at all gives the embedded default. A value that does
// not parse is an error naming the option; an unknown option is a warning.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// Config is exed's configuration.
type Config struct {
	API    API
	Runner Runner
	Log    Log
	// SSHNative is the [sshnative] executor section.
	SSHNative SSHNative
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
}

// Runner is the [runner] section.
type Runner struct {
	Executor    string
	Concurrency int
	Modules     string
	RedisURL    string
	BrokerURL   string
	// RedisPrefix starts every key exed keeps in Redis, so that several
	// installations can share one Redis.
	RedisPrefix   string
	QueueSize     int
	MaxJobs       int
	JobTTL        time.Duration
	ShutdownGrace time.Duration
	// Lease is how long a worker's hold on a running job lasts without a
	// heartbeat: after a worker dies, its jobs fail as "worker lost"
	// within about this long.
	Lease time.Duration
}

// Log is the [log] section.
type Log struct {
	Level     string
	ErrorLog  string // "" = stderr
	AccessLog string // "" = stdout
}

// SSHNative is the [sshnative] section.
type SSHNative struct {
	Inventory       string // Ansible inventory sources, comma-separated; "" = localhost only
	Roles           string // script roles for deploy
	CommandTimeout  time.Duration
	OutputCap       int
	RemoteUser      string   // "" = the current user
	PrivateKeyFiles []string // "" = ~/.ssh/id_ed25519, id_ecdsa, id_rsa
	KnownHosts      []string // "" = ~/.ssh/known_hosts
	HostKeyChecking bool
	UseAgent        bool
	ConnectTimeout  time.Duration
	KeepAlive       time.Duration
	IdleTimeout     time.Duration
}

// Default returns the embedded default configuration.
func Default() *Config {
	cwd, _ := os.Getwd()
	return &Config{
		API: API{ListenAddr: "127.0.0.1", ListenPort: 16808, MaxBodyBytes: 1 << 20, SyncTimeout: 60 * time.Second},
		Runner: Runner{Executor: "sshnative", Concurrency: runtime.NumCPU(), Modules: cwd + "/modules",
			QueueSize: 1024, MaxJobs: 10000, JobTTL: 7 * 24 * time.Hour, ShutdownGrace: 30 * time.Second,
			Lease: 10 * time.Second, RedisPrefix: "exe:"},
		Log: Log{Level: "info"},
		SSHNative: SSHNative{Roles: cwd + "/roles", OutputCap: 1 << 20, HostKeyChecking: true, UseAgent: true,
			ConnectTimeout: 10 * time.Second, KeepAlive: 30 * time.Second, IdleTimeout: 5 * time.Minute},
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
	{"api", "server_names", func(c *Config, v string) error { c.API.ServerNames = splitList(v); return nil }},
	{"api", "max_body_bytes", func(c *Config, v string) error { return setInt64(&c.API.MaxBodyBytes, v, 1) }},
	{"api", "sync_timeout", func(c *Config, v string) error { return setDuration(&c.API.SyncTimeout, v) }},
	{"runner", "executor", func(c *Config, v string) error { return setName(&c.Runner.Executor, v) }},
	{"runner", "concurrency", func(c *Config, v string) error { return setInt(&c.Runner.Concurrency, v, 1) }},
	{"runner", "modules", func(c *Config, v string) error { c.Runner.Modules = v; return nil }},
	{"runner", "redis_url", func(c *Config, v string) error { return setURL(&c.Runner.RedisURL, v) }},
	{"runner", "broker_url", func(c *Config, v string) error { return setURL(&c.Runner.BrokerURL, v) }},
	{"runner", "redis_prefix", func(c *Config, v string) error { return setKeyPrefix(&c.Runner.RedisPrefix, v) }},
	{"runner", "queue_size", func(c *Config, v string) error { return setInt(&c.Runner.QueueSize, v, 1) }},
	{"runner", "max_jobs", func(c *Config, v string) error { return setInt(&c.Runner.MaxJobs, v, 1) }},
	{"runner", "job_ttl", func(c *Config, v string) error { return setDuration(&c.Runner.JobTTL, v) }},
	{"runner", "shutdown_grace", func(c *Config, v string) error { return setDuration(&c.Runner.ShutdownGrace, v) }},
	{"runner", "lease", func(c *Config, v string) error { return setDuration(&c.Runner.Lease, v) }},
	{"log", "log_level", func(c *Config, v string) error { return setLevel(&c.Log.Level, v) }},
	{"log", "error_log", func(c *Config, v string) error { c.Log.ErrorLog = v; return nil }},
	{"log", "access_log", func(c *Config, v string) error { c.Log.AccessLog = v; return nil }},
	{"sshnative", "inventory", func(c *Config, v string) error { c.SSHNative.Inventory = v; return nil }},
	{"sshnative", "command_timeout", func(c *Config, v string) error { return setDuration(&c.SSHNative.CommandTimeout, v) }},
	{"sshnative", "output_cap", func(c *Config, v string) error { return setInt(&c.SSHNative.OutputCap, v, 1) }},
	{"sshnative", "roles", func(c *Config, v string) error { c.SSHNative.Roles = v; return nil }},
	{"sshnative", "remote_user", func(c *Config, v string) error { c.SSHNative.RemoteUser = v; return nil }},
	{"sshnative", "private_key_file", func(c *Config, v string) error { c.SSHNative.PrivateKeyFiles = splitList(v); return nil }},
	{"sshnative", "known_hosts", func(c *Config, v string) error { c.SSHNative.KnownHosts = splitList(v); return nil }},
	{"sshnative", "host_key_checking", func(c *Config, v string) error { return setBool(&c.SSHNative.HostKeyChecking, v) }},
	{"sshnative", "use_agent", func(c *Config, v string) error { return setBool(&c.SSHNative.UseAgent, v) }},
	{"sshnative", "connect_timeout", func(c *Config, v string) error { return setDuration(&c.SSHNative.ConnectTimeout, v) }},
	{"sshnative", "keepalive", func(c *Config, v string) error { return setDuration(&c.SSHNative.KeepAlive, v) }},
	{"sshnative", "idle_timeout", func(c *Config, v string) error { return setDuration(&c.SSHNative.IdleTimeout, v) }},
}

// Load reads the file at path over the defaults; an empty value keeps the
// option's default. It returns warnings for
// unknown sections and options, and an error naming the file, section and
// option for a value that does not parse.
func Load(path string) (*Config, []string, error) {
	c := Default()
	c.Path = path
	f, err := ini.LoadSources(ini.LoadOptions{AllowBooleanKeys: false, SpaceBeforeInlineComment: true}, path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
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
	for _, sec := range f.Sections() {
		name := sec.Name()
		if name == ini.DefaultSection && len(sec.Keys()) == 0 {
			continue
		}
		values := map[string]string{}
		for _, key := range sec.Keys() {
			if v := unquote(key.Value()); v != "" {
				values[key.Name()] = v
			}
		}
		c.Sections[name] = values
		opts, ok := known[name]
		if !ok {
			// A plugin's section: the server checks it names one.
			continue
		}
		for _, key := range sec.Keys() {
			o, ok := opts[key.Name()]
			if !ok {
				warnings = append(warnings, fmt.Sprintf("%s: unknown option %q in [%s] ignored", path, key.Name(), name))
				continue
			}
			v := unquote(key.Value())
			if v == "" {
				continue // an empty value keeps the default
			}
			if err := o.set(c, v); err != nil {
				return nil, warnings, fmt.Errorf("%s: [%s] %s: %w", path, name, key.Name(), err)
			}
		}
	}
	return c, warnings, nil
}

// ServerSections are the sections exed itself reads; any other section
// belongs to a plugin of that name.
var ServerSections = map[string]bool{"api": true, "runner": true, "log": true}

// SSHNativeFrom parses the key/values of an [sshnative] section, as the
// sshnative plugin receives them, over the defaults. Unknown keys are
// ignored (the server already warned of them); "concurrency" is the
// server's [runner] concurrency.
func SSHNativeFrom(values map[string]string) (SSHNative, int, error) {
	c := Default()
	for _, o := range options {
		v, ok := values[o.key]
		if o.section != "sshnative" || !ok || v == "" {
			continue
		}
		if err := o.set(c, v); err != nil {
			return SSHNative{}, 0, fmt.Errorf("[sshnative] %s: %w", o.key, err)
		}
	}
	if v, ok := values["concurrency"]; ok {
		if err := setInt(&c.Runner.Concurrency, v, 1); err != nil {
			return SSHNative{}, 0, fmt.Errorf("[runner] concurrency: %w", err)
		}
	}
	return c.SSHNative, c.Runner.Concurrency, nil
}

// splitList splits a comma-separated list of paths.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// unquote strips one pair of matching quotes, which ini leaves on single-
// quoted values.
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

func setPort(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q is not a port number (0-65535)", v)
	}
	*dst = n
	return nil
}

func setInt(dst *int, v string, min int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return fmt.Errorf("%q is not a whole number of at least %d", v, min)
	}
	*dst = n
	return nil
}

func setInt64(dst *int64, v string, min int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		return fmt.Errorf("%q is not a whole number of at least %d", v, min)
	}
	*dst = n
	return nil
}

func setBool(dst *bool, v string) error {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		*dst = true
	case "0", "false", "no", "off":
		*dst = false
	default:
		return fmt.Errorf("%q is not a boolean (true/false, yes/no, 1/0)", v)
	}
	return nil
}

// setDuration takes a Go duration ("90s", "1h30m"), a number of days ("7d")
// or a plain number of seconds.
func setDuration(dst *time.Duration, v string) error {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		*dst = time.Duration(n) * time.Second
		return nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			*dst = time.Duration(n) * 24 * time.Hour
			return nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration (e.g. 30s, 5m, 7d, or seconds)", v)
	}
	*dst = d
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

// Tokens reads the bearer tokens of AuthTokenFile: one per line, blank
// lines and # comments ignored.
func (a API) Tokens() ([]string, error) {
	if a.AuthTokenFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(a.AuthTokenFile)
	if err != nil {
		return nil, fmt.Errorf("[api] auth_token_file: %w", err)
	}
	var tokens []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("[api] auth_token_file: %s holds no token", a.AuthTokenFile)
	}
	return tokens, nil
}

// Loopback reports whether the listen address only accepts local clients.
func (a API) Loopback() bool {
	if a.ListenAddr == "localhost" {
		return true
	}
	ip := net.ParseIP(a.ListenAddr)
	return ip != nil && ip.IsLoopback()
}
