package sshnative

import (
	"path"
	"sort"
	"strings"

	"github.com/0ops/exed/exe"
)

// Host is one inventory entry.
type Host struct {
	Name string            // inventory name
	Vars map[string]string // host variables (ansible_host, ansible_connection, ...)
}

// Local reports whether the host is reached through a local connection.
func (h *Host) Local() bool { return h.Vars["ansible_connection"] == "local" }

// Inventory is the set of hosts an executor can reach.
type Inventory struct {
	hosts map[string]*Host
}

// DefaultInventory holds only localhost, with a local connection. It is what
// the executor uses when no inventory file is configured.
func DefaultInventory() *Inventory {
	return &Inventory{hosts: map[string]*Host{
		"localhost": {Name: "localhost", Vars: map[string]string{"ansible_connection": "local"}},
	}}
}

// Host returns the named host, or nil.
func (inv *Inventory) Host(name string) *Host { return inv.hosts[name] }

// Match returns the sorted, de-duplicated names selected by pattern: a
// union of terms separated by ',' or ':', each "all", "*" or a shell glob.
func (inv *Inventory) Match(pattern string) ([]string, error) {
	set := map[string]bool{}
	for _, term := range strings.FieldsFunc(pattern, func(r rune) bool { return r == ',' || r == ':' }) {
		term = strings.TrimSpace(term)
		if term == "all" {
			term = "*"
		}
		if _, err := path.Match(term, ""); err != nil {
			return nil, exe.Errorf(exe.ErrInvalid, "pattern: malformed term %q", term)
		}
		for name := range inv.hosts {
			if ok, _ := path.Match(term, name); ok {
				set[name] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}
