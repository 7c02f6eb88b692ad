package sshnative

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/0ops/exed/inventory"
)

// connSettings are a host's connection and become settings as Ansible
// reads them from its variables.
type connSettings struct {
	Connection, Address                  string
	Port                                 int
	User, PrivateKeyFile, Password       string
	SSHArgs, SSHCommonArgs, SSHExtraArgs string
	ShellType                            string
	// Timeout is ansible_ssh_timeout, seconds; "" when unset.
	Timeout                  string
	Become                   bool
	BecomeMethod, BecomeUser string
	BecomeExe, BecomeFlags   string
	BecomePassword           string
	// HostKeyChecking is ansible_host_key_checking (or
	// ansible_ssh_host_key_checking); nil when unset.
	HostKeyChecking *bool
}

// settingsOf reads a host's connection settings, with defaults (Ansible's
// configuration: ansible.cfg) below the host's own variables.
func settingsOf(h *inventory.Host, defaults map[string]string) (connSettings, error) {
	vars := h.Vars
	if len(defaults) > 0 {
		vars = make(map[string]string, len(h.Vars)+len(defaults))
		for k, v := range defaults {
			vars[k] = v
		}
		for k, v := range h.Vars {
			vars[k] = v
		}
	}
	last := func(names ...string) (string, bool) {
		v, found := "", false
		for _, n := range names {
			if x, ok := vars[n]; ok {
				v, found = x, true
			}
		}
		return v, found
	}
	str := func(names ...string) string { v, _ := last(names...); return v }
	c := connSettings{Connection: "ssh", Address: h.Name, BecomeMethod: "sudo", BecomeUser: "root"}
	if v, ok := last("ansible_connection"); ok {
		c.Connection = v
	}
	if v, ok := last("ansible_host", "ansible_ssh_host"); ok {
		c.Address = v
	}
	c.User = str("ansible_user", "ansible_ssh_user")
	c.PrivateKeyFile = str("ansible_private_key_file", "ansible_ssh_private_key_file")
	c.Password = str("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
	c.SSHArgs = str("ansible_ssh_args")
	c.SSHCommonArgs = str("ansible_ssh_common_args")
	c.SSHExtraArgs = str("ansible_ssh_extra_args")
	c.ShellType = str("ansible_shell_type")
	c.Timeout = str("ansible_ssh_timeout")
	if v, ok := last("ansible_port", "ansible_ssh_port"); ok {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return connSettings{}, fmt.Errorf("ansible_port %q is not a port number", v)
		}
		c.Port = p
	}
	if v, ok := last("ansible_become"); ok {
		b, err := ansibleBool("ansible_become", v)
		if err != nil {
			return connSettings{}, err
		}
		c.Become = b
	}
	if v, ok := last("ansible_host_key_checking", "ansible_ssh_host_key_checking"); ok {
		b, err := ansibleBool("ansible_host_key_checking", v)
		if err != nil {
			return connSettings{}, err
		}
		c.HostKeyChecking = &b
	}
	if v, ok := last("ansible_become_method"); ok {
		c.BecomeMethod = v
	}
	switch c.BecomeMethod {
	case "sudo":
		c.BecomeExe, c.BecomeFlags = "sudo", "-H -S -n"
		if v, ok := last("ansible_become_user", "ansible_sudo_user"); ok {
			c.BecomeUser = v
		}
		if v, ok := last("ansible_become_exe", "ansible_sudo_exe"); ok {
			c.BecomeExe = v
		}
		if v, ok := last("ansible_become_flags", "ansible_sudo_flags"); ok {
			c.BecomeFlags = v
		}
		c.BecomePassword = str("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass")
	case "su":
		c.BecomeExe = "su"
		if v, ok := last("ansible_become_user", "ansible_su_user"); ok {
			c.BecomeUser = v
		}
		if v, ok := last("ansible_become_exe", "ansible_su_exe"); ok {
			c.BecomeExe = v
		}
		c.BecomeFlags = str("ansible_become_flags", "ansible_su_flags")
		c.BecomePassword = str("ansible_become_password", "ansible_become_pass", "ansible_su_pass")
	default:
		c.BecomeUser = str("ansible_become_user")
		c.BecomeExe = str("ansible_become_exe")
		c.BecomeFlags = str("ansible_become_flags")
		c.BecomePassword = str("ansible_become_password", "ansible_become_pass")
	}
	return c, nil
}

// ansibleBool reads a boolean as Ansible's boolean(value, strict=True).
func ansibleBool(name, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "y", "yes", "on", "1", "true", "t":
		return true, nil
	case "n", "no", "off", "0", "false", "f":
		return false, nil
	}
	return false, fmt.Errorf("%s %q is not a valid boolean (use true or false)", name, v)
}
