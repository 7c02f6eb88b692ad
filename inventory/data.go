package inventory

import (
	"cmp"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The model follows Ansible's InventoryData, Group and Host
// (ansible/inventory/): what it keeps, in which order, and when a second
// definition replaces or is ignored. Every operation is linear in what it
// touches, so a group of 100,000 hosts loads in linear time.

type host struct {
	name string
	idx  int // order of first definition
	// vars are the host's own variables (inventory sources only), in the
	// order first set: a slice, where a map per host would cost several
	// times the memory of the few variables most hosts have.
	vars ownVars
	// direct lists the groups the host was put in, in order.
	direct []*group
	// where is the first definition ("file:line").
	where string
	// conn remembers where each connection variable got its value, to warn
	// when a later definition changes it; the value is the one in vars.
	conn []connSite
}

type connSite struct {
	key, where string
}

// ownVars are a host's own variables. Lookups are linear up to
// indexAbove entries, then through index.
type ownVars struct {
	list  []hostVar
	index map[string]int
}

type hostVar struct {
	key   string
	value any
}

// indexAbove is the count of variables from which a host's are indexed:
// below it a scan is faster than a map and much smaller.
const indexAbove = 16

func (hv *ownVars) find(k string) int {
	if hv.index != nil {
		if i, ok := hv.index[k]; ok {
			return i
		}
		return -1
	}
	for i := range hv.list {
		if hv.list[i].key == k {
			return i
		}
	}
	return -1
}

func (hv *ownVars) get(k string) (any, bool) {
	if i := hv.find(k); i >= 0 {
		return hv.list[i].value, true
	}
	return nil, false
}

func (hv *ownVars) set(k string, v any) {
	if i := hv.find(k); i >= 0 {
		hv.list[i].value = v
		return
	}
	hv.list = append(hv.list, hostVar{k, v})
	switch n := len(hv.list); {
	case hv.index != nil:
		hv.index[k] = n - 1
	case n > indexAbove:
		hv.index = make(map[string]int, n)
		for i, e := range hv.list {
			hv.index[e.key] = i
		}
	}
}

type group struct {
	name     string
	hosts    []*host
	children []*group
	parents  []*group
	vars     map[string]any
	priority int
	depth    int
	// lineage is the group and its ancestors but all, sorted for
	// variable precedence (setLineages).
	lineage []*group
	// base is what a host in this group alone gets from its groups
	// (setBases); nil: merged per host.
	base map[string]any
	// baseConn are base's values of connVarNames, for HostVars.Conn.
	baseConn *connValues
}

// localNames are Ansible's C.LOCALHOST: the names the implicit localhost
// answers to.
var localNames = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}

// connVars are the variables that decide where and as whom a command runs;
// a host defined twice with different values of one is warned about.
var connVars = map[string]bool{
	"ansible_host": true, "ansible_ssh_host": true, "ansible_port": true, "ansible_ssh_port": true,
	"ansible_user": true, "ansible_ssh_user": true, "ansible_connection": true,
}

func newInventory() *Inventory {
	inv := &Inventory{hostByName: map[string]*host{}, groupByName: map[string]*group{}, strings: map[string]string{}}
	all := inv.addGroup("all")
	ungrouped := inv.addGroup("ungrouped")
	_ = inv.addChild(all, ungrouped)
	return inv
}

func (inv *Inventory) warnf(format string, args ...any) {
	inv.warnings = append(inv.warnings, fmt.Sprintf(format, args...))
}

// warn records a warning as written, e.g. by the YAML loader.
func (inv *Inventory) warn(msg string) { inv.warnings = append(inv.warnings, msg) }

// addGroup returns the named group, creating it if needed.
func (inv *Inventory) addGroup(name string) *group {
	if g, ok := inv.groupByName[name]; ok {
		return g
	}
	g := &group{name: name, vars: map[string]any{}, priority: 1}
	inv.groups = append(inv.groups, g)
	inv.groupByName[name] = g
	return g
}

// addHost returns the named host, creating it (with port as ansible_port
// when non-zero) if needed, and puts it in g when g is not nil. As in
// Ansible, the port of a host defined before is ignored.
func (inv *Inventory) addHost(name string, g *group, port int, where string) (*host, error) {
	if name == "" {
		return nil, fmt.Errorf("invalid empty host name")
	}
	h, ok := inv.hostByName[name]
	if !ok {
		h = &host{name: name, idx: len(inv.hosts), where: where}
		inv.hosts = append(inv.hosts, h)
		inv.hostByName[name] = h
		if port != 0 {
			inv.setHostVar(h, "ansible_port", port, where)
		}
		if localNames[name] {
			if inv.localhost == nil {
				inv.localhost = h
			} else {
				inv.warnf("%s: a duplicate localhost-like entry was found (%s); the first found localhost was %s (%s)", where, name, inv.localhost.name, inv.localhost.where)
			}
		}
	} else if port != 0 {
		if cur, set := h.vars.get("ansible_port"); !set || !sameValue(cur, port) {
			first := h.where
			if site := h.connSite("ansible_port"); site != nil {
				first = site.where
			}
			inv.warnf("%s: host %q is given port %d, which Ansible ignores because the host is defined before (at %s)%s", where, name, port, first, portNote(h))
		}
	}
	if g != nil {
		g.addHost(h)
	}
	return h, nil
}

func portNote(h *host) string {
	if p, ok := h.vars.get("ansible_port"); ok {
		return fmt.Sprintf("; its port stays %v", p)
	}
	return "; its port stays unset (22)"
}

func (g *group) addHost(h *host) {
	for _, d := range h.direct {
		if d == g {
			return
		}
	}
	h.direct = append(h.direct, g)
	g.hosts = append(g.hosts, h)
}

// setHostVar is Host.set_variable: a later value replaces an earlier one,
// mappings too (Ansible merges them only with hash_behaviour=merge).
func (inv *Inventory) setHostVar(h *host, k string, v any, where string) {
	k, v = inv.intern(k), inv.internValue(v)
	if connVars[k] {
		site := h.connSite(k)
		if prev, _ := h.vars.get(k); site != nil && site.where != where && !sameValue(prev, v) {
			inv.warnf("host %q is defined at %s with %s=%v and at %s with %s=%v; as in Ansible the later one (%v) is used",
				h.name, site.where, k, prev, where, k, v, v)
		}
		if site != nil {
			site.where = where
		} else {
			h.conn = append(h.conn, connSite{k, where})
		}
	}
	h.vars.set(k, v)
}

func (h *host) connSite(k string) *connSite {
	for i := range h.conn {
		if h.conn[i].key == k {
			return &h.conn[i]
		}
	}
	return nil
}

// intern returns one copy of each distinct string a load meets, so that a
// variable name or a value repeated on every host line (ansible_user=deploy)
// is stored once, not once per host. strings stays nil outside loading.
func (inv *Inventory) intern(s string) string {
	if inv.strings == nil {
		return s
	}
	if c, ok := inv.strings[s]; ok {
		return c
	}
	// A copy, so that the line the string was cut from can be freed.
	c := strings.Clone(s)
	inv.strings[c] = c
	return c
}

func (inv *Inventory) internValue(v any) any {
	if s, ok := v.(string); ok {
		return inv.intern(s)
	}
	return v
}

// setGroupVar is Group.set_variable: ansible_group_priority sets the
// group's priority rather than a variable.
func (inv *Inventory) setGroupVar(g *group, k string, v any) error {
	if k == "ansible_group_priority" {
		p, ok := pyIntValue(v)
		if !ok {
			return fmt.Errorf("ansible_group_priority of group %q: %v is not a number", g.name, v)
		}
		g.priority = p
		return nil
	}
	g.vars[k] = v
	return nil
}

// pyIntValue is Python's int() of a value.
func pyIntValue(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case float64:
		return int(x), true
	case string:
		n, err := pyInt(x)
		return n, err == nil
	case *big.Int:
		return 0, false
	}
	return 0, false
}

func sameValue(a, b any) bool { return reflect.DeepEqual(a, b) }

// addChild makes child a child group of parent. As in Ansible, a group
// cannot be its own ancestor.
func (inv *Inventory) addChild(parent, child *group) error {
	if parent == child {
		return fmt.Errorf("group %q cannot be a child of itself", child.name)
	}
	// A group has few parents, where all may have many children.
	for _, p := range child.parents {
		if p == parent {
			return nil
		}
	}
	if path := ancestorPath(parent, child); path != nil {
		return fmt.Errorf("adding group %q as a child of %q creates a recursive dependency loop (%s)", child.name, parent.name, loopText(path, child))
	}
	parent.children = append(parent.children, child)
	child.parents = append(child.parents, parent)
	return nil
}

// ancestorPath returns the chain from g up to the ancestor a, or nil.
func ancestorPath(g, a *group) []*group {
	prev := map[*group]*group{g: nil}
	queue := []*group{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, p := range cur.parents {
			if _, seen := prev[p]; seen {
				continue
			}
			prev[p] = cur
			if p == a {
				var path []*group
				for x := p; x != nil; x = prev[x] {
					path = append(path, x)
				}
				return path
			}
			queue = append(queue, p)
		}
	}
	return nil
}

func loopText(path []*group, child *group) string {
	s := ""
	for _, g := range path {
		s += g.name + " > "
	}
	return s + child.name
}

// reconcile is InventoryData.reconcile_inventory: every group without a
// parent becomes a child of all; a host in ungrouped and in another group
// leaves ungrouped; a host in no group (or in all only) joins ungrouped.
func (inv *Inventory) reconcile() {
	all, ungrouped := inv.groupByName["all"], inv.groupByName["ungrouped"]
	for _, g := range inv.groups {
		if g != all && len(g.parents) == 0 {
			_ = inv.addChild(all, g)
		}
	}
	// other[g]: g or an ancestor is a group other than all and ungrouped.
	other := map[*group]bool{}
	var hasOther func(g *group) bool
	hasOther = func(g *group) bool {
		if v, ok := other[g]; ok {
			return v
		}
		other[g] = false // guards against loops, which addChild refuses anyway
		v := g != all && g != ungrouped
		for _, p := range g.parents {
			if !v && hasOther(p) {
				v = true
			}
		}
		other[g] = v
		return v
	}
	inUngrouped := map[*group]bool{}
	var viaUngrouped func(g *group) bool
	viaUngrouped = func(g *group) bool {
		if v, ok := inUngrouped[g]; ok {
			return v
		}
		inUngrouped[g] = g == ungrouped
		for _, p := range g.parents {
			if viaUngrouped(p) {
				inUngrouped[g] = true
			}
		}
		return inUngrouped[g]
	}
	leave := map[*host]bool{}
	for _, h := range inv.hosts {
		mineOther, mineUngrouped, onlyAll := false, false, true
		for _, g := range h.direct {
			if hasOther(g) {
				mineOther = true
			}
			if viaUngrouped(g) {
				mineUngrouped = true
			}
			if g != all {
				onlyAll = false
			}
		}
		switch {
		case mineUngrouped:
			if mineOther {
				leave[h] = true
			}
		case len(h.direct) == 0 || onlyAll:
			ungrouped.addHost(h)
		}
	}
	if len(leave) > 0 {
		kept := ungrouped.hosts[:0]
		for _, h := range ungrouped.hosts {
			if leave[h] {
				h.removeGroup(ungrouped)
				continue
			}
			kept = append(kept, h)
		}
		ungrouped.hosts = kept
	}
	var both []string
	for _, h := range inv.hosts {
		if _, ok := inv.groupByName[h.name]; ok {
			both = append(both, h.name)
		}
	}
	sort.Strings(both)
	for _, name := range both {
		inv.warnf("found both a group and a host named %q", name)
	}
	inv.setDepths()
}

func (h *host) removeGroup(g *group) {
	for i, d := range h.direct {
		if d == g {
			h.direct = append(h.direct[:i:i], h.direct[i+1:]...)
			return
		}
	}
}

// setDepths gives each group its depth below all: the longest chain of
// parents, which is what Ansible's incremental depth comes to.
func (inv *Inventory) setDepths() {
	done := make(map[*group]bool, len(inv.groups))
	var depth func(g *group) int
	depth = func(g *group) int {
		if done[g] {
			return g.depth
		}
		done[g] = true
		d := 0
		for _, p := range g.parents {
			if pd := depth(p) + 1; pd > d {
				d = pd
			}
		}
		g.depth = d
		return d
	}
	for _, g := range inv.groups {
		depth(g)
	}
}

// groupsOf lists the host's groups and their ancestors except all, sorted
// as Ansible's sort_groups does for variable precedence: by depth, then
// priority, then name. The list may be shared: do not change it.
func (inv *Inventory) groupsOf(h *host) []*group {
	switch len(h.direct) {
	case 0:
		return nil
	case 1:
		// Most hosts are in one group: its lineage, computed once.
		return h.direct[0].lineage
	}
	var out []*group
	for _, g := range h.direct {
		for _, a := range g.lineage {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, compareGroups)
	return out
}

// compareGroups is sort_groups' order: depth, priority, name. Names are
// unique, so the order is total.
func compareGroups(a, b *group) int {
	if a.depth != b.depth {
		return cmp.Compare(a.depth, b.depth)
	}
	if a.priority != b.priority {
		return cmp.Compare(a.priority, b.priority)
	}
	return strings.Compare(a.name, b.name)
}

// setLineages gives each group its lineage: itself and its ancestors
// except all, in compareGroups order. Once per inventory, so that
// resolving a host's variables does not walk and sort its groups again.
func (inv *Inventory) setLineages() {
	all := inv.groupByName["all"]
	for _, g := range inv.groups {
		var out []*group
		var add func(g *group)
		add = func(g *group) {
			if g == all || slices.Contains(out, g) {
				return
			}
			out = append(out, g)
			for _, p := range g.parents {
				add(p)
			}
		}
		add(g)
		slices.SortFunc(out, compareGroups)
		g.lineage = slices.Clip(out)
	}
}

// flatHosts is Group.get_hosts: the group's own hosts, then those of its
// descendants, level by level, each once; appended to out. Where Ansible's
// order among groups of one level depends on Python set order (two or more
// groups of a level having children), exed takes the groups in declaration
// order. seen is a bitset by host index, clear on entry and on return, so
// one serves every call of a Match.
func (inv *Inventory) flatHosts(g *group, out []*host, seen []uint64) []*host {
	start := len(out)
	groups := []*group{g}
	if len(g.children) > 0 {
		visited := map[*group]bool{g: true}
		for i := 0; i < len(groups); i++ {
			for _, c := range groups[i].children {
				if !visited[c] {
					visited[c] = true
					groups = append(groups, c)
				}
			}
		}
	}
	// Room for every host at once (at most the inventory's), rather than
	// growing a list of 100,000 hosts step by step.
	room := 0
	for _, d := range groups {
		room += len(d.hosts)
	}
	// slices.Grow grows as append does: a glob of 100,000 groups of a
	// host each stays linear.
	out = slices.Grow(out, min(room, len(inv.hosts)+1))
	for _, d := range groups {
		out = appendUnseen(out, d.hosts, seen)
	}
	for _, h := range out[start:] {
		seen[h.idx>>6] &^= 1 << (h.idx & 63)
	}
	return out
}

// appendUnseen appends the hosts not yet in seen, and marks them.
func appendUnseen(out, hosts []*host, seen []uint64) []*host {
	for _, h := range hosts {
		if seen[h.idx>>6]&(1<<(h.idx&63)) != 0 {
			continue
		}
		seen[h.idx>>6] |= 1 << (h.idx & 63)
		out = append(out, h)
	}
	return out
}

// strOf is Python's str() of a scalar value, used where Ansible turns a
// variable into text (a user name, a path).
func strOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		return pyFloatRepr(x)
	case nil:
		return "None"
	case *big.Int:
		return x.String()
	}
	return fmt.Sprint(v)
}
