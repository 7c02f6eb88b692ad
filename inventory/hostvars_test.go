package inventory_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/0ops/exed/internal/invgen"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nullsInventory has groups of at least 16 hosts (which share their
// group's merged variables) and hosts in several groups (which do not),
// with connection variables set to null over values set earlier, and a
// group with more variables than there are connection variables.
func nullsInventory() string {
	var b strings.Builder
	b.WriteString("all:\n  vars:\n    ansible_port: 2200\n    ansible_become: true\n  children:\n")
	b.WriteString("    big:\n      vars:\n        ansible_user: ops\n        ansible_become_user: null\n")
	for i := range 40 {
		fmt.Fprintf(&b, "        app_setting_%02d: %d\n", i, i)
	}
	b.WriteString("      hosts:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "        big%02d:\n", i)
	}
	b.WriteString("        big00:\n          ansible_user: null\n          ansible_host: 10.0.0.1\n")
	b.WriteString("        big01:\n          ansible_port: null\n          ansible_ssh_user: other\n")
	b.WriteString("    small:\n      vars:\n        ansible_port: null\n        ansible_become_method: su\n      hosts:\n")
	b.WriteString("        big02:\n        s1:\n        s2:\n          ansible_become: null\n")
	return b.String()
}

// TestHostVarsReadAsHost requires HostVars, which reads a host's
// variables one at a time (and its connection from its group's values
// computed once), to read what Host resolves: every variable, a few it
// does not have, and the connection, with and without defaults; and to
// number each listed host once (Index), on every inventory of the
// Ansible corpus, the generated nested layout and one with nulls over
// earlier values.
func TestHostVarsReadAsHost(t *testing.T) {
	type namedInventory struct {
		name  string
		inv   *inventory.Inventory
		extra []string
	}
	var invs []namedInventory
	for _, c := range loadCorpus(t) {
		if c.wantErr != nil {
			continue
		}
		inv, err := inventory.Options{PlaybookDir: c.playbookDir}.Load(c.sources...)
		require.NoError(t, err, c.name)
		invs = append(invs, namedInventory{c.name, inv, c.extraHosts})
	}
	nested, err := inventory.Parse(strings.NewReader(invgen.Nested(4000)), "hosts.ini")
	require.NoError(t, err)
	nulls, err := inventory.Parse(strings.NewReader(nullsInventory()), "hosts.yml")
	require.NoError(t, err)
	invs = append(invs, namedInventory{"nested", nested, nil}, namedInventory{"nulls", nulls, nil},
		namedInventory{"conn", parse(t, connInventory), nil}, namedInventory{"sample", parse(t, sample), nil})

	defaults := map[string]any{"ansible_user": "dflt", "ansible_port": "2022", "ansible_become": "true",
		"ansible_become_user": "app", "ansible_ssh_common_args": "-o ServerAliveInterval=5", "app_setting": "x"}
	checked := 0
	for _, c := range invs {
		names := append(append(c.inv.Hosts(), c.extra...), "localhost", "127.0.0.1", "::1", "not-a-host")
		// hosts are the listed hosts by Index.
		require.Equal(t, len(c.inv.Hosts()), c.inv.Len(), c.name)
		hosts := make([]string, c.inv.Len())
		for _, name := range c.inv.Hosts() {
			hv, _ := c.inv.HostVars(name)
			require.Zero(t, hosts[hv.Index()], "%s: %s and %s have one index", c.name, name, hosts[hv.Index()])
			hosts[hv.Index()] = name
		}
		indices := map[int]bool{}
		for _, name := range names {
			where := c.name + " " + name
			h := c.inv.Host(name)
			hv, ok := c.inv.HostVars(name)
			require.Equal(t, h != nil, ok, where)
			if h == nil {
				continue
			}
			checked++
			assert.Equal(t, h.Name, hv.Name(), where)
			if h.Implicit {
				assert.Equal(t, -1, hv.Index(), where)
			} else {
				assert.Equal(t, h.Name, hosts[hv.Index()], where)
				indices[hv.Index()] = true
			}
			for k, want := range h.Vars {
				got, ok := hv.Get(k)
				assert.True(t, ok, "%s: %s", where, k)
				assert.Equal(t, want, got, "%s: %s", where, k)
			}
			for _, k := range []string{"no_such_variable", "ansible_ssh_host", "ansible_sudo_user", "ansible_ssh_timeout"} {
				want, wantOK := h.Vars[k]
				got, ok := hv.Get(k)
				assert.Equal(t, wantOK, ok, "%s: %s", where, k)
				assert.Equal(t, want, got, "%s: %s", where, k)
			}
			want, wantErr := h.Conn()
			got, err := hv.Conn(nil)
			assert.Equal(t, want, got, where)
			assert.Equal(t, wantErr, err, where)

			// Defaults below the host's variables, as a merged map puts
			// them: a default, then the host's value unless null.
			merged := map[string]any{}
			for k, v := range defaults {
				merged[k] = v
			}
			for k, v := range h.Vars {
				if v != nil {
					merged[k] = v
				}
			}
			want, wantErr = (&inventory.Host{Name: h.Name, Vars: merged}).Conn()
			got, err = hv.Conn(defaults)
			assert.Equal(t, want, got, where+" with defaults")
			assert.Equal(t, wantErr, err, where+" with defaults")
			got, err = inventory.VarsOf(h).Conn(defaults)
			assert.Equal(t, want, got, where+" of a Host with defaults")
			assert.Equal(t, wantErr, err, where+" of a Host with defaults")
			assert.Equal(t, -1, inventory.VarsOf(h).Index(), where)
		}
		assert.Len(t, indices, c.inv.Len(), c.name)
	}
	require.Greater(t, checked, 4000)
}
