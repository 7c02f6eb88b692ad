package inventory

// HostVars reads a host's variables one at a time, where Host resolves
// them all into a map: what reaching a host takes (its connection and a
// few more variables) then costs no map per host, which at 100,000 hosts
// is most of resolving them. Each value is the one Host(name).Vars holds.
// It is a small value, shared with the inventory: copy it, do not change
// what it returns. The zero HostVars is no host.
type HostVars struct {
	name string
	// inv and h are a listed host's inventory and the host; nil: vars.
	inv *Inventory
	h   *host
	// vars are the variables of a host not read from the inventory's
	// sources (the implicit localhost, VarsOf).
	vars map[string]any
}

// HostVars returns the named host's variables, for the names Host
// answers to (the listed localhost for localhost, 127.0.0.1 and ::1, or
// the implicit one); false where Host returns nil.
func (inv *Inventory) HostVars(name string) (HostVars, bool) {
	h, ok := inv.hostByName[name]
	if !ok {
		if !localNames[name] {
			return HostVars{}, false
		}
		if inv.localhost == nil {
			return VarsOf(inv.implicitHost(name)), true
		}
		h = inv.localhost
	}
	return HostVars{name: h.name, inv: inv, h: h}, true
}

// VarsOf reads h.Vars through HostVars' methods, for a host the caller
// has as a Host (one made, or one from Inventory.Host).
func VarsOf(h *Host) HostVars { return HostVars{name: h.Name, vars: h.Vars} }

// Name is the host's inventory name (Host.Name).
func (v HostVars) Name() string { return v.name }

// Index numbers the hosts the inventory lists, from 0 to Len()-1, in the
// order they were first defined, so that a caller can keep what it
// derives from each host in a slice rather than a map by name; -1 for a
// host it does not list (the implicit localhost, VarsOf).
func (v HostVars) Index() int {
	if v.h == nil {
		return -1
	}
	return v.h.idx
}

// Len is the number of hosts the inventory lists (those of Hosts).
func (inv *Inventory) Len() int { return len(inv.hosts) }

// Get returns the variable's value as Host(name).Vars[key] does, and
// whether the host has the variable (a variable set to null: nil, true).
func (v HostVars) Get(key string) (any, bool) {
	if v.h == nil {
		val, ok := v.vars[key]
		return val, ok
	}
	inv, h := v.inv, v.h
	// resolveVars' sources, the last one first.
	if inv.playVars != nil {
		if val, ok := inv.playVars.hosts[h.name][key]; ok {
			return val, true
		}
	}
	for i := len(inv.varDirs) - 1; i >= 0; i-- {
		if val, ok := inv.varDirs[i].hosts[h.name][key]; ok {
			return val, true
		}
	}
	if val, ok := h.vars.get(key); ok {
		return val, true
	}
	if len(h.direct) == 1 && h.direct[0].base != nil {
		val, ok := h.direct[0].base[key]
		return val, ok
	}
	var buf [16]map[string]any
	srcs := inv.groupSources(inv.groupsOf(h), buf[:0])
	for i := len(srcs) - 1; i >= 0; i-- {
		if val, ok := srcs[i][key]; ok {
			return val, true
		}
	}
	return nil, false
}

// Conn is Host(name).Conn() of the host with defaults below its
// variables, as Ansible puts its configuration (ansible.cfg) below
// inventory variables: a default applies where the host does not set the
// variable or sets it to null. defaults may be nil. The errors are
// Host.Conn's.
func (v HostVars) Conn(defaults map[string]any) (Conn, error) {
	var vals connValues
	v.connValues(&vals)
	vals.setDefaults(defaults)
	return connOf(v.name, &vals)
}

// connValues sets out to the host's values of connVarNames: from its
// group's base when it has one (computed once per inventory), else from
// each source in resolveVars' order, then its own variables and host_vars.
func (v HostVars) connValues(out *connValues) {
	if v.h == nil {
		out.setFrom(v.vars)
		return
	}
	inv, h := v.inv, v.h
	if len(h.direct) == 1 && h.direct[0].baseConn != nil {
		*out = *h.direct[0].baseConn
	} else {
		var buf [16]map[string]any
		for _, m := range inv.groupSources(inv.groupsOf(h), buf[:0]) {
			out.setFrom(m)
		}
	}
	for _, e := range h.vars.list {
		out.set(e.key, e.value)
	}
	for _, vd := range inv.varDirs {
		out.setFrom(vd.hosts[h.name])
	}
	if inv.playVars != nil {
		out.setFrom(inv.playVars.hosts[h.name])
	}
}
