package sshnative

import (
	"fmt"
	"strings"

	"github.com/0ops/exed/ansiblecfg"
	"github.com/0ops/exed/inventory"
)

// connSettings are a host's connection and become settings as Ansible
// reads them from its variables (inventory.Conn), and the two ssh
// connection options Conn does not resolve.
type connSettings struct {
	inventory.Conn
	// Timeout is ansible_ssh_timeout, seconds; "" when unset.
	Timeout string
	// HostKeyChecking is ansible_host_key_checking (or
	// ansible_ssh_host_key_checking, which wins); nil when unset.
	HostKeyChecking *bool
}

// settingsOf reads a host's connection settings, with defaults (Ansible's
// configuration: ansible.cfg) below the host's own variables, as Ansible
// puts configuration below inventory variables.
func settingsOf(h *inventory.Host, defaults map[string]string) (connSettings, error) {
	if len(defaults) > 0 {
		vars := make(map[string]any, len(h.Vars)+len(defaults))
		for k, v := range defaults {
			vars[k] = v
		}
		for k, v := range h.Vars {
			if v != nil { // a variable set to null is unset: the default stays
				vars[k] = v
			}
		}
		h = &inventory.Host{Name: h.Name, Vars: vars, Implicit: h.Implicit}
	}
	c, err := h.Conn()
	if err != nil {
		return connSettings{}, err
	}
	s := connSettings{Conn: c}
	if name, v, ok := lastVar(h.Vars, "ansible_ssh_timeout"); ok {
		if s.Timeout, err = scalarVar(name, v); err != nil {
			return connSettings{}, err
		}
	}
	if name, v, ok := lastVar(h.Vars, "ansible_host_key_checking", "ansible_ssh_host_key_checking"); ok {
		text, err := scalarVar(name, v)
		if err != nil {
			return connSettings{}, err
		}
		// A boolean option, read as Ansible's config manager reads one.
		b := ansiblecfg.Boolean(text)
		s.HostKeyChecking = &b
	}
	return s, nil
}

// lastVar returns the last of names that vars sets to a non-null value.
func lastVar(vars map[string]any, names ...string) (string, any, bool) {
	found := false
	var name string
	var val any
	for _, n := range names {
		if v, ok := vars[n]; ok && v != nil {
			name, val, found = n, v, true
		}
	}
	return name, val, found
}

// scalarVar is a variable's value as text: a string, boolean or number,
// not a list, mapping, template or vaulted value.
func scalarVar(name string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		if strings.Contains(x, "{{") || strings.Contains(x, "{%") {
			return "", fmt.Errorf("%s is a Jinja2 template (%s), which exed does not render", name, x)
		}
		return x, nil
	case inventory.Unsafe:
		return string(x), nil
	case bool:
		if x {
			return "True", nil
		}
		return "False", nil
	case int, int64, float64:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("%s must be a string, a number or a boolean, not %T", name, v)
}
