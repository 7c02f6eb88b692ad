package sshnative

import (
	"context"
	"errors"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/0ops/exed/ansiblecfg"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/inventory"
	exeprom "github.com/0ops/exed/prometheus"
	"github.com/0ops/exed/section"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Options of the [sshnative] section, with their defaults, as etc/exed.conf
// documents them:
//
//	inventory          Ansible inventory sources, comma-separated like repeated
//	                   -i, relative to the working directory, whose
//	                   group_vars/ and host_vars/ apply as the playbook
//	                   directory's do for ansible (default:
//	                   ansible.cfg's, else /etc/ansible/hosts if it exists,
//	                   else localhost only, listed, with a local connection)
//	ansible_config     ansible.cfg to take defaults from; empty: Ansible's search
//	                   order (ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg,
//	                   /etc/ansible/ansible.cfg); none: no file
//	ssh_config         ssh_config applied as ssh applies it; empty: ~/.ssh/config
//	                   and /etc/ssh/ssh_config; none: no file
//	roles              script roles for deploy (default ./roles)
//	remote_user        login user when a host sets none (default: ansible.cfg's,
//	                   else ssh_config's, else the current user)
//	private_key_file   keys tried for every host, comma-separated (default: the
//	                   host's own, else ~/.ssh/id_*); read again when they change
//	known_hosts        known_hosts files, comma-separated (default ~/.ssh/known_hosts);
//	                   every connection reads them as they are; the list is
//	                   re-read on SIGHUP
//	host_key_checking  verify host keys (default true)
//	use_agent          use ssh-agent through SSH_AUTH_SOCK (default true)
//	connect_timeout    TCP connect plus handshake (default: ansible.cfg's timeout,
//	                   else ssh_config's ConnectTimeout, else 10s)
//	keepalive          keepalive interval of pooled connections (default 30s)
//	idle_timeout       pooled connections unused this long close (default 5m)
//	command_timeout    bound per command per host (default none)
//	kill_grace         an interrupted command's process group gets SIGHUP,
//	                   then SIGTERM after this long, then SIGKILL (default 2s)
//	output_cap         bytes kept of each output field (default 1048576)
//	forks              hosts at once per operation (default 50); the
//	                   server sends its [runner] concurrency as concurrency;
//	                   a request's forks may lower it, never raise it
//
// The explicit options win over ansible.cfg's settings ([defaults]
// inventory, remote_user, remote_port, private_key_file,
// host_key_checking, timeout; [privilege_escalation]; [ssh_connection]
// ssh_args, ssh_common_args, ssh_extra_args), which in turn apply below
// every host's own variables, as in Ansible.
//
// ConfigFromSection reads them into a Config; unknown returns the options it
// does not know, which callers warn about. A value that does not parse, or
// an inventory or ansible.cfg that does not load, is an ErrInvalid error
// naming the option.
func ConfigFromSection(values map[string]string) (cfg Config, unknown []string, err error) {
	s := section.New("sshnative", values)
	cfg = Config{
		Roles:          s.String("roles", ""),
		Forks:          s.Int("forks", s.Int("concurrency", 0, 1), 1),
		OutputCap:      s.Int("output_cap", DefaultOutputCap, 1),
		CommandTimeout: s.Duration("command_timeout", 0),
		SSH: SSHOptions{
			User:                  s.String("remote_user", ""),
			KeyFiles:              s.List("private_key_file", nil),
			KnownHosts:            s.List("known_hosts", nil),
			InsecureIgnoreHostKey: !s.Bool("host_key_checking", true),
			NoAgent:               !s.Bool("use_agent", true),
			SSHConfig:             s.String("ssh_config", ""),
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
	acPath := s.String("ansible_config", "")
	if err := s.Err(); err != nil {
		return Config{}, nil, exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	var sources []string
	if path != "" {
		sources = inventory.ParseSources(path)
	}
	ac, warning, err := findAnsibleConfig(acPath)
	if err != nil {
		return Config{}, nil, exe.Errorf(exe.ErrInvalid, "[sshnative] ansible_config: %v", err)
	}
	if warning != "" {
		cfg.Warnings = append(cfg.Warnings, warning)
	}
	if ac != nil {
		cfg.AnsibleConfig = ac.Path
		applyAnsibleConfig(&cfg, ac, s)
		if len(sources) == 0 {
			sources = ac.Inventory
		}
	}
	cfg.Warnings = append(cfg.Warnings, ansibleEnvWarnings()...)
	if len(sources) == 0 {
		// Ansible's own default; without it, Default's listed localhost.
		if _, err := os.Stat(defaultHostList); err == nil {
			sources = []string{defaultHostList}
			cfg.Warnings = append(cfg.Warnings, "no inventory configured ([sshnative] inventory, ansible.cfg's inventory): reading Ansible's default, "+defaultHostList)
		}
	}
	if len(sources) > 0 {
		inv, err := loadInventory(sources)
		if err != nil {
			return Config{}, nil, exe.Errorf(exe.ErrInvalid, "[sshnative] inventory: %v", err)
		}
		cfg.Inventory = inv
	}
	return cfg, s.Unused(), nil
}

// defaultHostList is Ansible's default inventory (DEFAULT_HOST_LIST), read
// when neither [sshnative] inventory nor ansible.cfg names one, as ansible
// reads it without -i. When it does not exist either, the inventory is
// inventory.Default(): localhost, listed, with a local connection.
var defaultHostList = "/etc/ansible/hosts"

// loadInventory loads the inventory sources as ansible run in exed's
// working directory loads them: relative paths from it, and its
// group_vars/ and host_vars/ above the inventory's, as the playbook
// directory's (for an ad-hoc command, the working directory's).
func loadInventory(sources []string) (*inventory.Inventory, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	return inventory.Options{PlaybookDir: wd}.Load(sources...)
}

// ansibleEnvWarnings names the ANSIBLE_* environment variables that would
// change Ansible's inventory, login or privilege and that sshnative does
// not read (only ANSIBLE_CONFIG is).
func ansibleEnvWarnings() []string {
	var set []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ANSIBLE_") && name != "ANSIBLE_CONFIG" && ansibleEnvMatters(name) {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return nil
	}
	sort.Strings(set)
	return []string{strings.Join(set, ", ") + " set in exed's environment: not honoured by sshnative; put the settings in ansible.cfg"}
}

func ansibleEnvMatters(name string) bool {
	switch name {
	case "ANSIBLE_INVENTORY", "ANSIBLE_HOSTS", "ANSIBLE_REMOTE_USER", "ANSIBLE_REMOTE_PORT", "ANSIBLE_PRIVATE_KEY_FILE",
		"ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_HOST_KEY_CHECKING", "ANSIBLE_TIMEOUT", "ANSIBLE_SSH_TIMEOUT",
		"ANSIBLE_SSH_ARGS", "ANSIBLE_SSH_COMMON_ARGS", "ANSIBLE_SSH_EXTRA_ARGS", "ANSIBLE_SSH_EXECUTABLE":
		return true
	}
	return strings.HasPrefix(name, "ANSIBLE_BECOME")
}

// findAnsibleConfig returns the ansible.cfg named by [sshnative]
// ansible_config: "" for Ansible's search order, "none" for none.
func findAnsibleConfig(path string) (*ansiblecfg.Config, string, error) {
	warning := ""
	switch path {
	case "none":
		return nil, "", nil
	case "":
		path, warning = ansiblecfg.Find()
		if path == "" {
			return nil, warning, nil
		}
	}
	ac, err := ansiblecfg.Load(path)
	return ac, warning, err
}

// applyAnsibleConfig puts ansible.cfg's settings below the [sshnative]
// options s sets and below every host's variables (HostDefaults), as
// Ansible puts its configuration below inventory variables.
func applyAnsibleConfig(cfg *Config, ac *ansiblecfg.Config, s *section.Section) {
	if !s.Has("remote_user") {
		cfg.SSH.User = ac.RemoteUser
	}
	if !s.Has("connect_timeout") && ac.Timeout > 0 {
		cfg.SSH.ConnectTimeout = time.Duration(ac.Timeout) * time.Second
	}
	d := map[string]string{}
	if ac.RemotePort != 0 {
		d["ansible_port"] = strconv.Itoa(ac.RemotePort)
	}
	if ac.PrivateKeyFile != "" {
		d["ansible_private_key_file"] = ac.PrivateKeyFile
	}
	if ac.HostKeyChecking != nil && !*ac.HostKeyChecking && !s.Has("host_key_checking") {
		d["ansible_host_key_checking"] = "false"
		cfg.Warnings = append(cfg.Warnings, ac.Path+": host_key_checking = False: SSH host keys are NOT verified for hosts that do not set ansible_host_key_checking")
	}
	if ac.Become != nil {
		d["ansible_become"] = strconv.FormatBool(*ac.Become)
	}
	for k, v := range map[string]string{
		"ansible_become_method": ac.BecomeMethod, "ansible_become_user": ac.BecomeUser,
		"ansible_become_exe": ac.BecomeExe, "ansible_become_flags": ac.BecomeFlags,
		"ansible_ssh_common_args": ac.SSHCommonArgs, "ansible_ssh_extra_args": ac.SSHExtraArgs,
	} {
		if v != "" {
			d[k] = v
		}
	}
	if ac.SSHArgsSet {
		d["ansible_ssh_args"] = ac.SSHArgs
	}
	if ac.BecomeAskPass {
		cfg.Warnings = append(cfg.Warnings, ac.Path+": become_ask_pass is not honoured: sshnative cannot ask for a password; set ansible_become_password for the hosts that need one")
	}
	if ac.AskPass {
		cfg.Warnings = append(cfg.Warnings, ac.Path+": ask_pass is not honoured: sshnative logs in with keys and ssh-agent only")
	}
	if len(d) > 0 {
		cfg.SSH.HostDefaults = d
	}
}

// Plugin is the sshnative executor as exed runs it in a plugin process:
// built from its [sshnative] section when the server configures it (see
// executor.Configurer), with the state directory the server gives the
// plugin (executor.StateDir) for its journal of running commands.
// Warnings go to the plugin's stderr as hclog JSON lines, which the server
// shows in its own log. Its metrics (package prometheus's NewSSH: SSH
// dial latency, pooled connections) reach the server through the plugin
// protocol (executor.Gatherer), which serves them with its own.
type Plugin struct {
	exe.Executor
	metrics *prometheus.Registry // set by Configure
}

var (
	_ executor.Gatherer  = (*Plugin)(nil)
	_ exe.MatchVersioner = (*Plugin)(nil)
)

// Gather implements executor.Gatherer: the executor's metrics, none
// before Configure.
func (p *Plugin) Gather() ([]*dto.MetricFamily, error) {
	if p.metrics == nil {
		return nil, nil
	}
	return p.metrics.Gather()
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

// Configure implements executor.Configurer. The first call builds the
// executor; a later one (exed sends the section again on SIGHUP) reloads
// the inventory the section names (its sources, group_vars and
// host_vars, and ansible.cfg's inventory setting), its known_hosts files
// and the ssh_config files (their contents: which files, as started) for
// the operations that start from then on, and keeps every other setting
// as started. A section or inventory that does not load, a known_hosts
// file that does not exist, or a configured ssh_config file that is gone
// or does not parse, is an error, and the inventory and files in use
// stay. (The contents of known_hosts files and private key files need no
// reload: every connection reads them as they are.)
func (p *Plugin) Configure(_ context.Context, values map[string]string) error {
	cfg, unknown, err := ConfigFromSection(values)
	if err != nil {
		return err
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sshnative", Output: os.Stderr, JSONFormat: true})
	if x, ok := p.Executor.(*Executor); ok {
		warnings, err := x.reload(cfg.Inventory, cfg.SSH.KnownHosts)
		if err != nil {
			return exe.Errorf(exe.ErrInvalid, "[sshnative]: %v", err)
		}
		if cfg.Inventory != nil {
			for _, w := range cfg.Inventory.Warnings() {
				log.Warn("inventory: " + w)
			}
		}
		for _, w := range warnings {
			log.Warn(w)
		}
		log.Info("inventory reloaded", "hosts", len(x.view().inv.Hosts()))
		return nil
	}
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
	reg := prometheus.NewRegistry()
	cfg.Observer = exeprom.NewSSH(reg)
	x, err := New(cfg)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "[sshnative]: %v", err)
	}
	p.Executor, p.metrics = x, reg
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

// Validates implements exe.ValidationScope with the executor's scope, so
// that the server asks the plugin only about what the executor checks
// (sshnative: deploys), not about every request.
func (p *Plugin) Validates(op exe.Operate) bool {
	if _, ok := p.Executor.(exe.RequestValidator); !ok {
		return false
	}
	if s, ok := p.Executor.(exe.ValidationScope); ok {
		return s.Validates(op)
	}
	return true
}

// MatchVersion implements exe.MatchVersioner with the executor's, so that
// the server keeps the plugin's Match answers until it configures the
// plugin again instead of asking it for every request; ok is false before
// Configure.
func (p *Plugin) MatchVersion() (uint64, bool) {
	if mv, ok := p.Executor.(exe.MatchVersioner); ok {
		return mv.MatchVersion()
	}
	return 0, false
}
