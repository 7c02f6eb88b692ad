// Package inventory reads Ansible inventories and selects hosts with
// Ansible's pattern semantics, so that exed works on the inventories teams
// already have. The rules are ansible-core 2.14's, checked against the real
// ansible-inventory and ansible by the tests in this package:
//
// Sources (Load; several sources are read in turn, like repeated -i):
//   - INI files: hosts before any section (group "ungrouped"), [group],
//     [group:children], [group:vars], host variables on the host line,
//     "name:port", "[v6addr]:port", numeric and alphabetic ranges with
//     optional step and zero-padding (web[01:50], db-[a:f], n[0:10:2]).
//     Values are typed as Ansible types them (Python literals: 22 is a
//     number, True a boolean, anything else a string).
//   - YAML (and JSON) files: all:/children:/hosts:/vars:, ranges in host
//     keys, read with YAML 1.1's types as Ansible reads them (yes is true).
//     A file is YAML when its name has no extension or .yml, .yaml or .json
//     and its content is a YAML inventory; otherwise INI.
//   - executable scripts: "--list" JSON, with _meta.hostvars or one
//     "--host NAME" run per host, each run bounded by Options.ScriptTimeout.
//   - directories: their entries in name order, recursively, except hidden
//     names, group_vars, host_vars, vars_plugins and names ending in .pyc,
//     .pyo, .swp, .bak, ~, .rpm, .md, .txt, .rst, .orig, .ini, .cfg, .retry.
//   - group_vars/ and host_vars/ beside each source (or in it, for a
//     directory): NAME, NAME.yml, NAME.yaml or NAME.json (the first found),
//     or every such file under the directory NAME/.
//
// Variables resolve as for "ansible-inventory --host": group all, then the
// host's groups by depth, ansible_group_priority and name; then
// group_vars/all and group_vars/GROUP in that order, source by source; then
// the host's own variables and host_vars/HOST.
//
// A host defined twice keeps the first definition's port (name:port) and
// takes every variable from the later definition, as in Ansible; Warnings
// names both places when that changes where or as whom a command runs.
//
// The implicit localhost (localhost, 127.0.0.1, ::1 when not listed) has a
// local connection and is not part of "all". A listed localhost is a host
// like any other: it is reached over SSH unless ansible_connection says
// otherwise.
//
// Not supported: inventory plugins other than these (a YAML file with a
// "plugin:" key is an error), TOML inventories, ansible-vault encrypted
// files (!vault values are kept as Vaulted), Jinja2 templates in
// connection variables (Conn refuses them).
package inventory

import (
	"maps"
	"sort"
	"strings"
)

// Inventory is a loaded inventory. It is immutable and safe for concurrent
// use.
type Inventory struct {
	hosts       []*host
	hostByName  map[string]*host
	groups      []*group
	groupByName map[string]*group
	// localhost is the first listed localhost-like host, which answers for
	// every localhost name, as in Ansible.
	localhost *host
	// all is group all.
	all *group
	// sorted are the hosts by name, for Match's result.
	sorted  []*host
	varDirs []*varsDir
	// playVars are the playbook directory's group_vars/ and host_vars/
	// (Options.PlaybookDir); nil: none.
	playVars *varsDir
	warnings []string
	// strings interns the strings of a load (see intern); nil once frozen.
	strings map[string]string
}

// Host is an inventory host with its variables resolved.
type Host struct {
	Name string
	// Vars are the host's variables as "ansible-inventory --host" gives
	// them: string, bool, int (or *big.Int), float64, nil, []any,
	// map[string]any or Vaulted values. They are shared with the
	// inventory: read them, do not change them. Conn reads the connection
	// variables with Ansible's precedence between their spellings.
	Vars map[string]any
	// Implicit is set for the implicit localhost that the inventory does
	// not list.
	Implicit bool
}

// Group is an inventory group as "ansible-inventory --list" shows it.
type Group struct {
	Name string
	// Hosts are the group's own hosts, in the order they were added.
	Hosts []string
	// Children are its child groups, in the order they were added.
	Children []string
	// Vars are the variables the inventory sources give the group (not
	// group_vars/ files).
	Vars map[string]any
}

// Local reports whether the host is reached with a local connection
// (ansible_connection local, or ansible.builtin.local ...).
func (h *Host) Local() bool {
	v, ok := h.Vars["ansible_connection"]
	if !ok {
		return false
	}
	s, err := textVar("ansible_connection", v)
	return err == nil && ConnectionPlugin(s) == "local"
}

// Default is the inventory used when none is configured: localhost, listed
// explicitly (so patterns like "*" show it) with a local connection.
func Default() *Inventory {
	inv := newInventory()
	h, _ := inv.addHost("localhost", inv.groupByName["ungrouped"], 0, "default inventory")
	h.vars.set("ansible_connection", "local")
	inv.reconcile()
	inv.freeze()
	return inv
}

// Static is an inventory of the given hosts in group "ungrouped", for an
// executor whose hosts come from elsewhere (a service registry, a cloud
// API): its Match then gives Ansible's pattern semantics in one line. Each
// entry is read like the first word of an INI host line: ranges
// ("web[01:20]") and a port ("db1:2222", "[::1]:2222") set ansible_port.
func Static(hosts ...string) (*Inventory, error) {
	inv := newInventory()
	ungrouped := inv.groupByName["ungrouped"]
	for _, entry := range hosts {
		names, port, _, err := expandHostPattern(entry)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if _, err := inv.addHost(n, ungrouped, port, "static"); err != nil {
				return nil, err
			}
		}
	}
	inv.reconcile()
	inv.freeze()
	return inv, nil
}

func (inv *Inventory) freeze() {
	inv.strings = nil
	inv.all = inv.groupByName["all"]
	inv.setLineages()
	inv.setBases()
	inv.sorted = make([]*host, len(inv.hosts))
	copy(inv.sorted, inv.hosts)
	sort.Slice(inv.sorted, func(i, j int) bool { return inv.sorted[i].name < inv.sorted[j].name })
}

// Warnings lists what loading noticed and Ansible would accept silently or
// with a warning of its own: a host defined twice with a different address,
// port or user, a port Ansible ignores, a file an inventory directory
// ignores, a YAML key that is skipped. Each names the file and line.
func (inv *Inventory) Warnings() []string {
	return append([]string(nil), inv.warnings...)
}

// Hosts lists every host in the inventory's order (as "ansible all
// --list-hosts" does), without the implicit localhost.
func (inv *Inventory) Hosts() []string {
	hs := inv.flatHosts(inv.groupByName["all"], nil, make([]uint64, len(inv.hosts)/64+1))
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.name
	}
	return out
}

// Groups lists the group names, sorted; all and ungrouped are among them.
func (inv *Inventory) Groups() []string {
	out := make([]string, 0, len(inv.groups))
	for _, g := range inv.groups {
		out = append(out, g.name)
	}
	sort.Strings(out)
	return out
}

// Group returns the named group, or nil.
func (inv *Inventory) Group(name string) *Group {
	g, ok := inv.groupByName[name]
	if !ok {
		return nil
	}
	out := &Group{Name: g.name, Vars: g.vars}
	for _, h := range g.hosts {
		out.Hosts = append(out.Hosts, h.name)
	}
	for _, c := range g.children {
		out.Children = append(out.Children, c.name)
	}
	return out
}

// Host returns the named host with its variables resolved; for
// localhost, 127.0.0.1 or ::1 when the inventory does not list that name,
// the first of them it lists, else the implicit localhost; or nil.
func (inv *Inventory) Host(name string) *Host {
	h, ok := inv.hostByName[name]
	if !ok {
		if !localNames[name] {
			return nil
		}
		if inv.localhost == nil {
			return inv.implicitHost(name)
		}
		h = inv.localhost
	}
	return &Host{Name: h.name, Vars: inv.resolveVars(h)}
}

// resolveVars resolves a listed host's variables. A host in one group starts
// from that group's base (see setBases) when it has one: a copy of a
// finished map is about half the work of merging the groups again, and a
// host with no variables of its own shares the base itself.
func (inv *Inventory) resolveVars(h *host) map[string]any {
	var vars map[string]any
	if len(h.direct) == 1 && h.direct[0].base != nil {
		base := h.direct[0].base
		if len(h.vars.list) == 0 && !inv.hasHostFiles(h.name) {
			return base
		}
		vars = maps.Clone(base)
	} else {
		vars = inv.groupVars(inv.groupsOf(h), len(h.vars.list))
	}
	for _, e := range h.vars.list {
		vars[e.key] = e.value
	}
	for _, vd := range inv.varDirs {
		maps.Copy(vars, vd.hosts[h.name])
	}
	if inv.playVars != nil {
		maps.Copy(vars, inv.playVars.hosts[h.name])
	}
	return vars
}

// groupVars merges the variables a host in groups (groupsOf's list) gets
// from them, before its own, in Ansible's order: the inventory's own for
// all, then its group_vars/all, the playbook directory's group_vars/all,
// the inventory's group_vars of each group, the playbook directory's.
// extra is room for the host's own.
func (inv *Inventory) groupVars(groups []*group, extra int) map[string]any {
	var buf [16]map[string]any
	srcs := inv.groupSources(groups, buf[:0])
	size := extra
	for _, m := range srcs {
		size += len(m)
	}
	vars := make(map[string]any, size)
	for _, m := range srcs {
		for k, v := range m {
			vars[k] = v
		}
	}
	return vars
}

// groupSources appends to srcs the maps groupVars merges, in its order:
// a later one's value wins.
func (inv *Inventory) groupSources(groups []*group, srcs []map[string]any) []map[string]any {
	play := inv.playVars
	if play == nil {
		play = &varsDir{}
	}
	srcs = append(srcs, inv.all.vars)
	for _, g := range groups {
		srcs = append(srcs, g.vars)
	}
	for _, vd := range inv.varDirs {
		srcs = append(srcs, vd.groups["all"])
	}
	srcs = append(srcs, play.groups["all"])
	for _, vd := range inv.varDirs {
		for _, g := range groups {
			srcs = append(srcs, vd.groups[g.name])
		}
	}
	for _, g := range groups {
		srcs = append(srcs, play.groups[g.name])
	}
	return srcs
}

// hasHostFiles tells whether host_vars files give the host variables.
func (inv *Inventory) hasHostFiles(name string) bool {
	for _, vd := range inv.varDirs {
		if len(vd.hosts[name]) > 0 {
			return true
		}
	}
	return inv.playVars != nil && len(inv.playVars.hosts[name]) > 0
}

// baseFrom is how many hosts a group must have alone (in no other
// group) for it to keep their base variables: below it the base would
// cost more memory than it saves work (a group per host would double the
// inventory's variables).
const baseFrom = 16

// setBases gives each group of at least baseFrom hosts that are in no
// other group its base: the variables those hosts get from their groups
// (groupVars), with room for the most variables one of them has of its
// own, so that a copy takes them without growing. Once per inventory,
// after its group_vars are read; the base is shared: never changed.
func (inv *Inventory) setBases() {
	for _, g := range inv.groups {
		alone, own := 0, 0
		for _, h := range g.hosts {
			if len(h.direct) == 1 {
				alone++
				own = max(own, len(h.vars.list))
			}
		}
		if alone >= baseFrom {
			g.base = inv.groupVars(g.lineage, own)
			g.baseConn = new(connValues)
			g.baseConn.setFrom(g.base)
		}
	}
}

// implicitHost is the implicit localhost: group all's variables and its
// own, with a local connection.
func (inv *Inventory) implicitHost(name string) *Host {
	vars := map[string]any{}
	for k, v := range inv.groupByName["all"].vars {
		vars[k] = v
	}
	dirs := inv.varDirs
	if inv.playVars != nil {
		dirs = append(dirs[:len(dirs):len(dirs)], inv.playVars)
	}
	for _, vd := range dirs {
		for k, v := range vd.groups["all"] {
			vars[k] = v
		}
	}
	vars["ansible_connection"] = "local"
	for _, vd := range dirs {
		for k, v := range vd.hosts[name] {
			vars[k] = v
		}
	}
	return &Host{Name: name, Vars: vars, Implicit: true}
}

// sortedKeys lists a map's keys in order.
func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hasTemplate tells whether a value is a Jinja2 template, which Ansible
// renders when it uses the value and exed does not.
func hasTemplate(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%")
}
