package sshnative

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/section"
	"github.com/hashicorp/go-hclog"
)

// Options of the [sshnative] section, with their defaults, as etc/exed.conf
// documents them:
//
//	inventory          Ansible inventory sources, comma-separated like repeated
//	                   -i (default: localhost only)
//	roles              script roles for deploy (default ./roles)
//	remote_user        login user when a host sets none (default: current user)
//	private_key_file   keys tried for every host, comma-separated (default ~/.ssh/id_*)
//	known_hosts        known_hosts files, comma-separated (default ~/.ssh/known_hosts)
//	host_key_checking  verify host keys (default true)
//	use_agent          use ssh-agent through SSH_AUTH_SOCK (default true)
//	connect_timeout    TCP connect plus handshake (default 10s)
//	keepalive          keepalive interval of pooled connections (default 30s)
//	idle_timeout       pooled connections unused this long close (default 5m)
//	command_timeout    bound per command per host (default none)
//	kill_grace         an interrupted command's process group gets SIGHUP,
//	                   then SIGTERM after this long, then SIGKILL (default 2s)
//	output_cap         bytes kept of each output field (default 1048576)
//	concurrency        hosts at once (the server's [runner] concurrency)
//
// ConfigFromSection reads them into a Config; unknown returns the options it
// does not know, which callers warn about. A value that does not parse, or
// an inventory that does not load, is an ErrInvalid error naming the option.
func ConfigFromSection(values map[string]string) (cfg Config, unknown []string, err error) {
	s := section.New("sshnative", values)
	cfg = Config{
		Roles:          s.String("roles", ""),
		Concurrency:    s.Int("concurrency", 0, 1),
		OutputCap:      s.Int("output_cap", DefaultOutputCap, 1),
		CommandTimeout: s.Duration("command_timeout", 0),
		SSH: SSHOptions{
			User:                  s.String("remote_user", ""),
			KeyFiles:              s.List("private_key_file", nil),
			KnownHosts:            s.List("known_hosts", nil),
			InsecureIgnoreHostKey: !s.Bool("host_key_checking", true),
			NoAgent:               !s.Bool("use_agent", true),
			ConnectTimeout:        s.Duration("connect_timeout", 0),
			KeepAlive:             s.Duration("keepalive", 0),
			IdleTimeout:           s.Duration("idle_timeout", 0),
		},
	}
	s.Check("kill_grace", func(v string) error {
		d, err := section.ParseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be more than 0 (a process group gets this long after SIGHUP and after SIGTERM)")
		}
		cfg.KillGrace = d
		return nil
	})
	path := s.String("inventory", "")
	if err := s.Err(); err != nil {
		return Config{}, nil, exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	if path != "" {
		inv, err := inventory.Load(inventory.ParseSources(path)...)
		if err != nil {
			return Config{}, nil, exe.Errorf(exe.ErrInvalid, "[sshnative] inventory: %v", err)
		}
		cfg.Inventory = inv
	}
	return cfg, s.Unused(), nil
}

// Plugin is the sshnative executor as exed runs it in a plugin process:
// built from its [sshnative] section when the server configures it (see
// executor.Configurer), with the state directory the server gives the
// plugin (executor.StateDir) for its journal of running commands.
// Warnings go to the plugin's stderr as hclog JSON lines, which the server
// shows in its own log.
type Plugin struct {
	exe.Executor
}

// Close closes the executor; executor.Serve calls it once every operation
// has returned, and it waits until the commands that were cancelled have
// ended.
func (p *Plugin) Close() error {
	if c, ok := p.Executor.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Configure implements executor.Configurer.
func (p *Plugin) Configure(_ context.Context, values map[string]string) error {
	cfg, unknown, err := ConfigFromSection(values)
	if err != nil {
		return err
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sshnative", Output: os.Stderr, JSONFormat: true})
	if len(unknown) > 0 {
		log.Warn("unknown options in [sshnative] ignored: " + strings.Join(unknown, ", "))
	}
	if cfg.SSH.InsecureIgnoreHostKey {
		log.Warn("[sshnative] host_key_checking = false: SSH host keys are NOT verified")
	}
	if cfg.Inventory != nil {
		for _, w := range cfg.Inventory.Warnings() {
			log.Warn("inventory: " + w)
		}
	}
	cfg.Logger = log
	cfg.StateDir = executor.StateDir()
	x, err := New(cfg)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "[sshnative]: %v", err)
	}
	p.Executor = x
	return nil
}

// Health implements exe.HealthChecker.
func (p *Plugin) Health(ctx context.Context) error {
	if p.Executor == nil {
		return exe.Errorf(exe.ErrUnavailable, "sshnative: not configured")
	}
	if h, ok := p.Executor.(exe.HealthChecker); ok {
		return h.Health(ctx)
	}
	return nil
}

// ValidateRequest implements exe.RequestValidator: the executor's checks
// (a deploy's role exists) reach the server through the plugin protocol.
func (p *Plugin) ValidateRequest(ctx context.Context, req exe.Request) error {
	if v, ok := p.Executor.(exe.RequestValidator); ok {
		return v.ValidateRequest(ctx, req)
	}
	return nil
}
