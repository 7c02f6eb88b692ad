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
// puts configuration below inventory variables: a default applies where
// the host does not set the variable, or sets it to null.
func settingsOf(h inventory.HostVars, defaults map[string]any) (connSettings, error) {
	c, err := h.Conn(defaults)
	if err != nil {
		return connSettings{}, err
	}
	s := connSettings{Conn: c}
	if name, v, ok := lastVar(h, defaults, "ansible_ssh_timeout"); ok {
		if s.Timeout, err = scalarVar(name, v); err != nil {
			return connSettings{}, err
		}
	}
	if name, v, ok := lastVar(h, defaults, "ansible_host_key_checking", "ansible_ssh_host_key_checking"); ok {
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

// lastVar returns the last of names that the host sets to a non-null
// value, or else defaults does.
func lastVar(h inventory.HostVars, defaults map[string]any, names ...string) (string, any, bool) {
	found := false
	var name string
	var val any
	for _, n := range names {
		v, _ := h.Get(n)
		if v == nil {
			v = defaults[n]
		}
		if v != nil {
			name, val, found = n, v, true
		}
	}
	return name, val, found
}

// anyDefaults is HostDefaults as variables' values.
func anyDefaults(d map[string]string) map[string]any {
	if len(d) == 0 {
		return nil
	}
	out := make(map[string]any, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
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
