// Package inventory reads Ansible's INI inventory format and selects hosts
// with Ansible's pattern semantics, so that users can point exed at the
// inventories they already have.
//
// Supported: hosts before any section (group "ungrouped"), [group],
// [group:children], [group:vars], host variables on the host line,
// "name:port", numeric and alphabetic ranges with optional step and
// zero-padding (web[01:50].example.com, db-[a:f], n[0:10:2]), and the
// implicit localhost (reachable by name with a local connection, not part of
// "all"). Variables resolve as Ansible does: group "all", then groups from
// the shallowest to the deepest (by name within a depth), then the host.
package inventory

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/0ops/exed/exe"
)

// Host is an inventory host with its variables resolved.
type Host struct {
	Name string
	Vars map[string]string
	// Implicit is set for the implicit localhost that the inventory does
	// not list.
	Implicit bool
}

// Local reports whether the host is reached with a local connection.
func (h *Host) Local() bool { return h.Vars["ansible_connection"] == "local" }

// Inventory is a parsed inventory. It is immutable and safe for concurrent use.
type Inventory struct {
	hosts  map[string]map[string]string // host -> its own variables
	order  []string                     // hosts in the order first seen
	groups map[string]*group
}

type group struct {
	name     string
	hosts    []string
	children []string
	parents  []string
	vars     map[string]string
}

// localNames are the names that resolve to the implicit localhost.
var localNames = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}

var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

func newInventory() *Inventory {
	inv := &Inventory{hosts: map[string]map[string]string{}, groups: map[string]*group{}}
	inv.group("all")
	inv.group("ungrouped")
	return inv
}

// Default is the inventory used when none is configured: localhost, listed
// explicitly (so patterns like "*" show it) with a local connection.
func Default() *Inventory {
	inv := newInventory()
	inv.addHost("localhost", "ungrouped", map[string]string{"ansible_connection": "local"})
	inv.reconcile()
	return inv
}

// Static is an inventory of the given hosts in group "ungrouped", for an
// executor whose hosts come from elsewhere (a service registry, a cloud
// API): its Match then gives Ansible's pattern semantics in one line. Each
// entry may use the ranges of Ansible's INI format ("web[01:20]") and a
// ":port" suffix, which sets ansible_port. An entry that is not a valid host
// is an error naming it.
func Static(hosts ...string) (*Inventory, error) {
	inv := newInventory()
	for _, h := range hosts {
		names, port, err := expandHost(h)
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		var vars map[string]string
		if port != "" {
			vars = map[string]string{"ansible_port": port}
		}
		for _, n := range names {
			inv.addHost(n, "ungrouped", vars)
		}
	}
	inv.reconcile()
	return inv, nil
}

// Load parses the inventory file at path.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

func (inv *Inventory) group(name string) *group {
	g, ok := inv.groups[name]
	if !ok {
		g = &group{name: name, vars: map[string]string{}}
		inv.groups[name] = g
	}
	return g
}

func (inv *Inventory) addHost(name, groupName string, vars map[string]string) {
	own, ok := inv.hosts[name]
	if !ok {
		own = map[string]string{}
		inv.hosts[name] = own
		inv.order = append(inv.order, name)
	}
	for k, v := range vars {
		own[k] = v
	}
	g := inv.group(groupName)
	for _, h := range g.hosts {
		if h == name {
			return
		}
	}
	g.hosts = append(g.hosts, name)
}

// Parse reads an INI inventory; name is used in error messages.
func Parse(r io.Reader, name string) (*Inventory, error) {
	inv := newInventory()
	errorf := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	section, kind := "ungrouped", "hosts"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, errorf(n, "malformed section header %q", line)
			}
			head := strings.TrimSpace(line[1 : len(line)-1])
			section, kind = head, "hosts"
			if g, k, ok := strings.Cut(head, ":"); ok {
				section, kind = g, k
			}
			if kind != "hosts" && kind != "vars" && kind != "children" {
				return nil, errorf(n, "unknown section type %q (want :vars or :children)", kind)
			}
			if !groupNameRE.MatchString(section) {
				return nil, errorf(n, "invalid group name %q", section)
			}
			if kind == "hosts" && section == "all" {
				return nil, errorf(n, "hosts cannot be listed under [all]; every host is in it")
			}
			inv.group(section)
			continue
		}
		switch kind {
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, errorf(n, "expected key=value in [%s:vars], got %q", section, line)
			}
			inv.group(section).vars[k] = unquote(strings.TrimSpace(v))
		case "children":
			child := strings.Fields(line)[0]
			if !groupNameRE.MatchString(child) || child == "all" {
				return nil, errorf(n, "invalid child group name %q", child)
			}
			if child == section {
				return nil, errorf(n, "group %q cannot be its own child", child)
			}
			p, c := inv.group(section), inv.group(child)
			p.children = appendUniq(p.children, child)
			c.parents = appendUniq(c.parents, section)
		default:
			fields, err := splitFields(line)
			if err != nil {
				return nil, errorf(n, "%v", err)
			}
			names, port, err := expandHost(fields[0])
			if err != nil {
				return nil, errorf(n, "%v", err)
			}
			vars := map[string]string{}
			if port != "" {
				vars["ansible_port"] = port
			}
			for _, kv := range fields[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return nil, errorf(n, "expected key=value after the host name, got %q", kv)
				}
				vars[k] = v
			}
			for _, h := range names {
				if !exe.ValidHostName(h) {
					return nil, errorf(n, "host name %q: use letters, digits, '.', '_' and '-' (alias other addresses with ansible_host)", h)
				}
				inv.addHost(h, section, vars)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := inv.checkCycles(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	inv.reconcile()
	return inv, nil
}

// reconcile makes every parentless group a child of all, and puts in
// ungrouped exactly the hosts that belong to no other group.
func (inv *Inventory) reconcile() {
	all := inv.group("all")
	for name, g := range inv.groups {
		if name != "all" && len(g.parents) == 0 {
			all.children = appendUniq(all.children, name)
			g.parents = []string{"all"}
		}
	}
	inGroup := map[string]bool{}
	for name, g := range inv.groups {
		if name == "all" || name == "ungrouped" {
			continue
		}
		for _, h := range g.hosts {
			inGroup[h] = true
		}
	}
	var ungrouped []string
	for _, h := range inv.order {
		if !inGroup[h] {
			ungrouped = append(ungrouped, h)
		}
	}
	inv.groups["ungrouped"].hosts = ungrouped
}

func (inv *Inventory) checkCycles() error {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("group %q is its own ancestor", name)
		case 2:
			return nil
		}
		state[name] = 1
		for _, c := range inv.groups[name].children {
			if err := visit(c); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	names := make([]string, 0, len(inv.groups))
	for n := range inv.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n); err != nil {
			return err
		}
	}
	return nil
}

// Host returns the named host with its variables resolved, the implicit
// localhost for localhost/127.0.0.1/::1 when the inventory does not list
// them, or nil.
func (inv *Inventory) Host(name string) *Host {
	own, ok := inv.hosts[name]
	if !ok {
		if localNames[name] {
			return &Host{Name: name, Implicit: true, Vars: map[string]string{"ansible_connection": "local"}}
		}
		return nil
	}
	vars := map[string]string{}
	for _, g := range inv.groupsOf(name) {
		for k, v := range inv.groups[g].vars {
			vars[k] = v
		}
	}
	for k, v := range own {
		vars[k] = v
	}
	if localNames[name] {
		if _, set := vars["ansible_connection"]; !set {
			vars["ansible_connection"] = "local"
		}
	}
	return &Host{Name: name, Vars: vars}
}

// groupsOf lists the host's groups and their ancestors, ordered for
// variable precedence: by depth below all, then by name.
func (inv *Inventory) groupsOf(host string) []string {
	seen := map[string]bool{}
	var add func(string)
	add = func(g string) {
		if seen[g] {
			return
		}
		seen[g] = true
		for _, p := range inv.groups[g].parents {
			add(p)
		}
	}
	for name, g := range inv.groups {
		for _, h := range g.hosts {
			if h == host {
				add(name)
			}
		}
	}
	add("all")
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	depth := map[string]int{}
	for _, g := range out {
		depth[g] = inv.depth(g, map[string]int{})
	}
	sort.Slice(out, func(i, j int) bool {
		if depth[out[i]] != depth[out[j]] {
			return depth[out[i]] < depth[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

func (inv *Inventory) depth(g string, memo map[string]int) int {
	if g == "all" {
		return 0
	}
	if d, ok := memo[g]; ok {
		return d
	}
	d := 0
	for _, p := range inv.groups[g].parents {
		if pd := inv.depth(p, memo) + 1; pd > d {
			d = pd
		}
	}
	memo[g] = d
	return d
}

// hostsOf lists the hosts of a group and of its descendants.
func (inv *Inventory) hostsOf(name string, out map[string]bool, seen map[string]bool) {
	if seen[name] {
		return
	}
	seen[name] = true
	g := inv.groups[name]
	for _, h := range g.hosts {
		out[h] = true
	}
	for _, c := range g.children {
		inv.hostsOf(c, out, seen)
	}
}

func appendUniq(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// splitFields splits a host line into words, honouring single and double
// quotes in values (key="a b").
func splitFields(line string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	var quote rune
	inField := false
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inField = r, true
		case r == '#' && !inField:
			return finish(fields, &cur, inField), nil
		case r == ' ' || r == '\t':
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			cur.WriteRune(r)
			inField = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	return finish(fields, &cur, inField), nil
}

func finish(fields []string, cur *strings.Builder, inField bool) []string {
	if inField {
		fields = append(fields, cur.String())
	}
	return fields
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}
