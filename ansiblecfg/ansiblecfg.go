// Package ansiblecfg reads the settings of Ansible's configuration file,
// ansible.cfg, that decide which inventory Ansible reads and where, as whom
// and with which privilege it connects, as ansible-core 2.14 reads them:
// found in Ansible's search order, parsed as Python's configparser parses
// it, values typed and paths resolved as Ansible's config manager does.
package ansiblecfg

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Config is what an ansible.cfg sets; a field is its zero value (a nil
// pointer for booleans) when the file does not set it.
type Config struct {
	// Path is the file read.
	Path string
	// Inventory is [defaults] inventory: comma-separated sources, each
	// resolved as a path (~ and $VAR expanded, relative to the file's
	// directory).
	Inventory []string
	// RemoteUser, RemotePort and PrivateKeyFile are [defaults]
	// remote_user, remote_port and private_key_file (a resolved path).
	RemoteUser     string
	RemotePort     int
	PrivateKeyFile string
	// HostKeyChecking is [defaults] host_key_checking, or [ssh_connection]
	// host_key_checking, which wins.
	HostKeyChecking *bool
	// Timeout is [defaults] timeout: the SSH connect timeout, seconds.
	Timeout int
	// Become, BecomeMethod, BecomeUser, BecomeExe and BecomeFlags are
	// [privilege_escalation] become, become_method, become_user,
	// become_exe and become_flags.
	Become                                           *bool
	BecomeMethod, BecomeUser, BecomeExe, BecomeFlags string
	// BecomeAskPass and AskPass are [privilege_escalation]
	// become_ask_pass and [defaults] ask_pass: Ansible would prompt.
	BecomeAskPass, AskPass bool
	// SSHArgs, SSHCommonArgs and SSHExtraArgs are [ssh_connection]
	// ssh_args, ssh_common_args and ssh_extra_args; SSHArgsSet tells
	// ssh_args was given (even empty, which drops Ansible's default).
	SSHArgs, SSHCommonArgs, SSHExtraArgs string
	SSHArgsSet                           bool
}

// Find returns the ansible.cfg Ansible uses, first found of: the file
// ANSIBLE_CONFIG names (ansible.cfg in it for a directory), ./ansible.cfg
// unless the working directory is world-writable, ~/.ansible.cfg,
// /etc/ansible/ansible.cfg; "" when none exists and is readable. warning
// says when a ./ansible.cfg was skipped, with Ansible's reason.
func Find() (path, warning string) {
	var candidates []string
	fromEnv, envSet := os.LookupEnv("ANSIBLE_CONFIG")
	if envSet {
		fromEnv = ResolvePath(fromEnv, "")
		if st, err := os.Stat(fromEnv); err == nil && st.IsDir() {
			fromEnv = filepath.Join(fromEnv, "ansible.cfg")
		}
		candidates = append(candidates, fromEnv)
	}
	skippedCwd := ""
	if cwd, err := os.Getwd(); err == nil {
		if st, err := os.Stat(cwd); err == nil {
			cfg := filepath.Join(cwd, "ansible.cfg")
			if st.Mode().Perm()&0o002 != 0 {
				if _, err := os.Stat(cfg); err == nil {
					skippedCwd = cwd
				}
			} else {
				candidates = append(candidates, cfg)
			}
		}
	}
	candidates = append(candidates, ResolvePath("~/.ansible.cfg", ""), "/etc/ansible/ansible.cfg")
	for _, c := range candidates {
		if f, err := os.Open(c); err == nil {
			f.Close()
			path = c
			break
		}
	}
	if skippedCwd != "" && (!envSet || path != fromEnv) {
		warning = fmt.Sprintf("Ansible is being run in a world writable directory (%s), ignoring it as an ansible.cfg source", skippedCwd)
	}
	return path, warning
}

// Load reads an ansible.cfg. An error names the file, and the section and
// key of a value that does not parse.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ansible.cfg: %w", err)
	}
	sections, err := parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("ansible.cfg %s:%v", path, err)
	}
	c := &Config{Path: path}
	base := ""
	if filepath.IsAbs(path) {
		base = filepath.Dir(path)
	}
	get := func(section, key string) (string, bool) {
		v, ok := sections[section][key]
		return v, ok
	}
	var errs []error
	str := func(dst *string, section, key string) {
		if v, ok := get(section, key); ok {
			*dst = unquote(v)
		}
	}
	boolean := func(section, key string) *bool {
		v, ok := get(section, key)
		if !ok {
			return nil
		}
		t := Boolean(unquote(v))
		return &t
	}
	integer := func(dst *int, section, key string) {
		v, ok := get(section, key)
		if !ok {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("[%s] %s: %q is not an integer", section, key, v))
			return
		}
		*dst = n
	}
	if v, ok := get("defaults", "inventory"); ok {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.Inventory = append(c.Inventory, ResolvePath(p, base))
			}
		}
	}
	str(&c.RemoteUser, "defaults", "remote_user")
	integer(&c.RemotePort, "defaults", "remote_port")
	if v, ok := get("defaults", "private_key_file"); ok && v != "" {
		c.PrivateKeyFile = ResolvePath(v, base)
	}
	c.HostKeyChecking = boolean("defaults", "host_key_checking")
	if b := boolean("ssh_connection", "host_key_checking"); b != nil {
		c.HostKeyChecking = b
	}
	integer(&c.Timeout, "defaults", "timeout")
	c.Become = boolean("privilege_escalation", "become")
	str(&c.BecomeMethod, "privilege_escalation", "become_method")
	str(&c.BecomeUser, "privilege_escalation", "become_user")
	str(&c.BecomeExe, "privilege_escalation", "become_exe")
	str(&c.BecomeFlags, "privilege_escalation", "become_flags")
	if b := boolean("privilege_escalation", "become_ask_pass"); b != nil {
		c.BecomeAskPass = *b
	}
	if b := boolean("defaults", "ask_pass"); b != nil {
		c.AskPass = *b
	}
	if v, ok := get("ssh_connection", "ssh_args"); ok {
		c.SSHArgs, c.SSHArgsSet = unquote(v), true
	}
	str(&c.SSHCommonArgs, "ssh_connection", "ssh_common_args")
	str(&c.SSHExtraArgs, "ssh_connection", "ssh_extra_args")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ansible.cfg %s: %v", path, err)
	}
	return c, nil
}

// parse reads an INI file as Python's configparser.ConfigParser with
// inline_comment_prefixes=(";",) reads it, which is how Ansible reads
// ansible.cfg: "#" and ";" start comment lines, ";" after whitespace
// starts an inline comment (but "#" does not), a key is separated from its
// value by the first "=" or ":", keys are case-insensitive, an indented
// line continues the value before it, and a key or section given twice is
// an error. Generic INI readers differ on the comments, which changes
// values such as ssh_args.
func parse(text string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	var cur map[string]string
	var key string
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for n, raw := range lines {
		line := strings.TrimRight(raw, " \t")
		trimmed := strings.TrimLeft(line, " \t")
		indented := len(trimmed) < len(line)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
			if trimmed == "" && key != "" {
				cur[key] += "\n"
			}
			continue
		}
		trimmed = stripInlineComment(trimmed)
		if indented && key != "" {
			cur[key] = strings.TrimRight(cur[key], "\n") + "\n" + trimmed
			continue
		}
		if strings.HasPrefix(trimmed, "[") {
			end := strings.IndexByte(trimmed, ']')
			if end < 0 {
				return nil, fmt.Errorf("%d: malformed section header %q", n+1, trimmed)
			}
			name := trimmed[1:end]
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("%d: section [%s] already exists", n+1, name)
			}
			cur = map[string]string{}
			out[name] = cur
			key = ""
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%d: %q before any [section]", n+1, trimmed)
		}
		i := strings.IndexAny(trimmed, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("%d: %q is not key = value", n+1, trimmed)
		}
		key = strings.ToLower(strings.TrimSpace(trimmed[:i]))
		if _, dup := cur[key]; dup {
			return nil, fmt.Errorf("%d: %s is set twice in its section", n+1, key)
		}
		cur[key] = strings.TrimSpace(trimmed[i+1:])
	}
	for _, sec := range out {
		for k, v := range sec {
			sec[k] = strings.TrimRight(v, "\n")
		}
	}
	return out, nil
}

// stripInlineComment cuts a line at a ";" that follows whitespace.
func stripInlineComment(line string) string {
	for i := 1; i < len(line); i++ {
		if line[i] == ';' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return strings.TrimRight(line[:i], " \t")
		}
	}
	return line
}

// Boolean reads a value as Ansible's boolean(value, strict=False): true
// for y, yes, on, 1, true, t (any case), false for anything else.
func Boolean(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "y", "yes", "on", "1", "true", "t":
		return true
	}
	return false
}

// unquote removes the quotes around a whole value, as Ansible's unquote.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// envRef is $NAME or ${NAME}, as Python's os.path.expandvars finds it.
var envRef = regexp.MustCompile(`\$(?:([A-Za-z0-9_]+)|\{([^}]*)\})`)

// ResolvePath resolves a path setting as Ansible's unfrackpath does:
// $VAR and ${VAR} expanded (unknown ones kept), then ~ and ~user, then made
// absolute from base (the configuration file's directory; "" for the
// working directory) and cleaned. Symbolic links are kept.
func ResolvePath(p, base string) string {
	p = envRef.ReplaceAllStringFunc(p, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := os.LookupEnv(m[1] + m[2]); ok {
			return v
		}
		return ref
	})
	if strings.HasPrefix(p, "~") {
		name, rest, _ := strings.Cut(p[1:], "/")
		home := ""
		if name == "" {
			home, _ = os.UserHomeDir()
		} else if u, err := user.Lookup(name); err == nil {
			home = u.HomeDir
		}
		if home != "" {
			p = filepath.Join(home, rest)
		}
	}
	if !filepath.IsAbs(p) {
		if base == "" {
			base, _ = os.Getwd()
		}
		p = filepath.Join(base, p)
	}
	return filepath.Clean(p)
}
