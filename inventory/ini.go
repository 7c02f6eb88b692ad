package inventory

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// The expressions of Ansible's INI inventory plugin
// (ansible/plugins/inventory/ini.py), with Python's Unicode \s and \w.
var (
	iniSectionRE   = regexp.MustCompile(`^\[([^:\]\s\p{Z}\x1c-\x1f\x85]+)(?::([\p{L}\p{N}_]+))?\][\s\p{Z}]*(?:#.*)?$`)
	iniGroupNameRE = regexp.MustCompile(`^([^:\]\s\p{Z}\x1c-\x1f\x85]+)[\s\p{Z}]*(?:#.*)?$`)
)

type pendingDecl struct {
	line    int
	state   string
	parents []string
}

// parseINI reads an INI inventory into inv as Ansible's INI plugin does.
// Errors name the file and line.
func (inv *Inventory) parseINI(path string, data []byte) error {
	lines := pySplitLines(string(data))
	groupName, state := "ungrouped", "hosts"
	pending := map[string]*pendingDecl{}
	var pendingOrder []string
	errorf := func(n int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
	}
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if !utf8.ValidString(line) {
			return errorf(n, "the line is not valid UTF-8")
		}
		if m := iniSectionRE.FindStringSubmatch(line); m != nil {
			groupName, state = m[1], m[2]
			if state == "" {
				state = "hosts"
			}
			if state != "hosts" && state != "children" && state != "vars" {
				return errorf(n, "section [%s:%s] has unknown type %q (want hosts, children or vars)", m[1], m[2], m[2])
			}
			if _, known := inv.groupByName[groupName]; !known {
				// [g:vars] alone does not declare g: it must be declared
				// elsewhere, which is checked at the end.
				if _, ok := pending[groupName]; state == "vars" && !ok {
					pending[groupName] = &pendingDecl{line: n, state: state}
					pendingOrder = append(pendingOrder, groupName)
				}
				inv.addGroup(groupName)
			}
			if p, ok := pending[groupName]; ok && state != "vars" {
				if p.state == "children" {
					if err := inv.addPendingChildren(groupName, pending, path); err != nil {
						return errorf(n, "%v", err)
					}
				} else {
					delete(pending, groupName)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			return errorf(n, "invalid section entry %q: a section is [name], [name:vars] or [name:children], with no spaces", line)
		}
		switch state {
		case "hosts":
			if err := inv.iniHostLine(path, n, line, groupName); err != nil {
				return err
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return errorf(n, "expected key=value in [%s:vars], got %q", groupName, line)
			}
			if err := inv.setGroupVar(inv.groupByName[groupName], strings.TrimSpace(k), iniValue(strings.TrimSpace(v))); err != nil {
				return errorf(n, "%v", err)
			}
		case "children":
			m := iniGroupNameRE.FindStringSubmatch(line)
			if m == nil {
				return errorf(n, "expected a group name in [%s:children], got %q", groupName, line)
			}
			child := m[1]
			if _, known := inv.groupByName[child]; !known {
				if p, ok := pending[child]; ok {
					p.parents = append(p.parents, groupName)
				} else {
					pending[child] = &pendingDecl{line: n, state: "children", parents: []string{groupName}}
					pendingOrder = append(pendingOrder, child)
				}
				continue
			}
			if err := inv.addChild(inv.groupByName[groupName], inv.groupByName[child]); err != nil {
				return errorf(n, "%v", err)
			}
		}
	}
	for _, name := range pendingOrder {
		p, ok := pending[name]
		if !ok {
			continue
		}
		if p.state == "vars" {
			return errorf(p.line, "section [%s:vars] is for group %q, which is not defined ([%s] or [%s:children] is missing)", name, name, name, name)
		}
		return errorf(p.line, "section [%s:children] includes undefined group %q", p.parents[len(p.parents)-1], name)
	}
	return nil
}

// addPendingChildren is _add_pending_children: a group declared after
// [parent:children] named it joins its parents now.
func (inv *Inventory) addPendingChildren(name string, pending map[string]*pendingDecl, path string) error {
	for _, parent := range pending[name].parents {
		if err := inv.addChild(inv.groupByName[parent], inv.groupByName[name]); err != nil {
			return err
		}
		if p, ok := pending[parent]; ok && p.state == "children" {
			if err := inv.addPendingChildren(parent, pending, path); err != nil {
				return err
			}
		}
	}
	delete(pending, name)
	return nil
}

// iniHostLine reads "name[:port] key=value ..." into group groupName.
func (inv *Inventory) iniHostLine(path string, n int, line, groupName string) error {
	where := fmt.Sprintf("%s:%d", path, n)
	tokens, err := shlexSplit(line)
	if err != nil {
		return fmt.Errorf("%s: error parsing host definition %q: %v", where, line, err)
	}
	if len(tokens) == 0 {
		return fmt.Errorf("%s: expected a host definition, got %q", where, line)
	}
	word := tokens[0]
	if strings.HasPrefix(word, "[") && !strings.Contains(line, "]") {
		return fmt.Errorf("%s: malformed section header %q", where, line)
	}
	names, port, ok, err := expandHostPattern(word)
	if err != nil {
		return fmt.Errorf("%s: %v", where, err)
	}
	if len(names) == 0 {
		inv.warnf("%s: the range in %q gives no host (its begin is after its end); Ansible adds none", where, word)
	}
	if strings.HasSuffix(strings.TrimSpace(word), ":") && port == 0 {
		return fmt.Errorf("%s: invalid host pattern %q: it ends in ':', which is kept for a port (is this a YAML file?)", where, word)
	}
	for _, h := range names {
		if strings.TrimSpace(h) == "---" {
			return fmt.Errorf("%s: invalid host pattern %q: '---' is normally a sign this is a YAML file", where, word)
		}
	}
	if !ok {
		inv.warnNotAddress(where, word)
	}
	type kv struct {
		k string
		v any
	}
	vars := make([]kv, 0, len(tokens)-1)
	for _, t := range tokens[1:] {
		k, v, found := strings.Cut(t, "=")
		if !found {
			return fmt.Errorf("%s: expected key=value host variable assignment, got %q", where, t)
		}
		vars = append(vars, kv{k, iniValue(v)})
	}
	g := inv.groupByName[groupName]
	for _, name := range names {
		h, err := inv.addHost(name, g, port, where)
		if err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		for _, p := range vars {
			inv.setHostVar(h, p.k, p.v, where)
		}
	}
	return nil
}

// warnNotAddress notes a host word that is no hostname or address; Ansible
// takes it as written (and so does exed), which is rarely what was meant.
func (inv *Inventory) warnNotAddress(where, word string) {
	if isIPv6(word) {
		return // fe80::1%eth0: an address with a zone
	}
	inv.warnf("%s: %q is not a valid host name or address; Ansible takes it as a host name as written", where, word)
}

// pySplitLines splits text as Python's str.splitlines does.
func pySplitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\n', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
			out = append(out, s[start:i])
			i += size
			start = i
			continue
		case '\r':
			out = append(out, s[start:i])
			i += size
			if i < len(s) && s[i] == '\n' {
				i++
			}
			start = i
			continue
		}
		i += size
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
