package inventory

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v4"
)

// errPluginConfig marks a YAML file that configures an inventory plugin
// (a top-level "plugin:" key) rather than listing hosts.
var errPluginConfig = errors.New("the file configures an inventory plugin")

// yamlKind names a node's type as Python would, for messages.
func yamlKind(n *yaml.Node, d *yamlDoc) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "dict"
	case yaml.SequenceNode:
		return "list"
	}
	v, _ := d.scalar(n)
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int:
		return "int"
	case float64:
		return "float"
	}
	return "str"
}

func isNull(n *yaml.Node, d *yamlDoc) bool {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return false
	}
	v, err := d.scalar(n)
	return err == nil && v == nil
}

// parseYAMLInventory reads a YAML (or JSON) inventory as Ansible's yaml
// plugin does: top-level keys are groups, each with optional hosts (a
// mapping of host patterns, ranges allowed, to their variables), vars and
// children (a mapping of groups, recursively). What Ansible skips with a
// warning is skipped with a warning.
func (inv *Inventory) parseYAMLInventory(path string, root *yaml.Node, d *yamlDoc) error {
	if root == nil || isNull(root, d) {
		return fmt.Errorf("%s: parsed an empty YAML file", path)
	}
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: a YAML inventory must be a mapping of groups, got a %s", path, root.Line, yamlKind(root, d))
	}
	ps, err := d.pairs(root)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("%s: parsed an empty YAML file", path)
	}
	for _, p := range ps {
		if p.key == "plugin" {
			if v, _ := d.value(p.valNode, 0); v != nil && v != "" && v != false {
				return fmt.Errorf("%s:%d: %w (%v)", path, p.keyNode.Line, errPluginConfig, v)
			}
		}
	}
	for _, p := range ps {
		if _, err := inv.yamlGroup(path, d, p.key, p.keyNode, p.valNode); err != nil {
			return err
		}
	}
	return nil
}

// yamlGroup is the yaml plugin's _parse_group; it returns the group name.
func (inv *Inventory) yamlGroup(path string, d *yamlDoc, key any, keyNode, data *yaml.Node) (string, error) {
	data = resolve(data)
	name, isStr := key.(string)
	if data.Kind != yaml.MappingNode && !isNull(data, d) {
		inv.warnf("%s:%d: skipping %v as it is not a valid group definition (a %s, not a mapping)", path, keyNode.Line, key, yamlKind(data, d))
		return strOf(key), nil
	}
	if !isStr || name == "" {
		return "", fmt.Errorf("%s:%d: invalid group name %v: a group name must be a non-empty string", path, keyNode.Line, key)
	}
	g := inv.addGroup(name)
	if data.Kind != yaml.MappingNode {
		return name, nil
	}
	ps, err := d.pairs(data)
	if err != nil {
		return "", err
	}
	// A section given as a string is a mapping of that one name.
	for i, p := range ps {
		if p.key != "vars" && p.key != "children" && p.key != "hosts" {
			continue
		}
		v := resolve(p.valNode)
		if v.Kind == yaml.ScalarNode && !isNull(v, d) {
			sv, _ := d.scalar(v)
			if _, ok := sv.(string); ok {
				ps[i].valNode = &yaml.Node{Kind: yaml.MappingNode, Line: v.Line, Content: []*yaml.Node{v, {Kind: yaml.ScalarNode, Value: "~", Line: v.Line}}}
				continue
			}
		}
		if v.Kind != yaml.MappingNode && !isNull(v, d) {
			return "", fmt.Errorf("%s:%d: invalid %q entry for group %q: it must be a mapping, found a %s", path, p.keyNode.Line, p.key, name, yamlKind(v, d))
		}
	}
	for _, p := range ps {
		v := resolve(p.valNode)
		if v.Kind != yaml.MappingNode {
			if !isNull(v, d) {
				inv.warnf("%s:%d: skipping key %v in group %q as it is not a mapping, it is a %s", path, p.keyNode.Line, p.key, name, yamlKind(v, d))
			}
			continue
		}
		switch p.key {
		case "vars":
			vs, err := d.pairs(v)
			if err != nil {
				return "", err
			}
			for _, kv := range vs {
				val, err := d.value(kv.valNode, 0)
				if err != nil {
					return "", err
				}
				if err := inv.setGroupVar(g, varName(kv.key), val); err != nil {
					return "", fmt.Errorf("%s:%d: %v", path, kv.keyNode.Line, err)
				}
			}
		case "children":
			cs, err := d.pairs(v)
			if err != nil {
				return "", err
			}
			for _, c := range cs {
				childName, err := inv.yamlGroup(path, d, c.key, c.keyNode, c.valNode)
				if err != nil {
					return "", err
				}
				child, ok := inv.groupByName[childName]
				if !ok {
					return "", fmt.Errorf("%s:%d: %s is not a known host nor group", path, c.keyNode.Line, childName)
				}
				if err := inv.addChild(g, child); err != nil {
					return "", fmt.Errorf("%s:%d: %v", path, c.keyNode.Line, err)
				}
			}
		case "hosts":
			hs, err := d.pairs(v)
			if err != nil {
				return "", err
			}
			for _, hp := range hs {
				if err := inv.yamlHost(path, d, g, hp); err != nil {
					return "", err
				}
			}
		default:
			inv.warnf("%s:%d: skipping unexpected key %v in group %q: only vars, children and hosts are valid", path, p.keyNode.Line, p.key, name)
		}
	}
	return name, nil
}

func (inv *Inventory) yamlHost(path string, d *yamlDoc, g *group, hp pair) error {
	where := fmt.Sprintf("%s:%d", path, hp.keyNode.Line)
	word, ok := hp.key.(string)
	if !ok {
		return fmt.Errorf("%s: host pattern %v must be a string; enclose integers and floats in quotation marks", where, hp.key)
	}
	names, port, valid, err := expandHostPattern(word)
	if err != nil {
		return fmt.Errorf("%s: %v", where, err)
	}
	if !valid {
		inv.warnNotAddress(where, word)
	}
	if len(names) == 0 {
		inv.warnf("%s: the range in %q gives no host (its begin is after its end); Ansible adds none", where, word)
	}
	vn := resolve(hp.valNode)
	var vars []pair
	if vn.Kind == yaml.MappingNode {
		if vars, err = d.pairs(vn); err != nil {
			return err
		}
	} else if _, err := d.value(vn, 0); err != nil {
		return err
	} else if !yamlFalsy(vn, d) {
		return fmt.Errorf("%s: the variables of host %q must be a mapping, got a %s", where, word, yamlKind(vn, d))
	}
	values := make([]any, len(vars))
	for i, kv := range vars {
		if values[i], err = d.value(kv.valNode, 0); err != nil {
			return err
		}
	}
	for _, name := range names {
		h, err := inv.addHost(name, g, port, where)
		if err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		for i, kv := range vars {
			inv.setHostVar(h, varName(kv.key), values[i], where)
		}
	}
	return nil
}

// yamlFalsy is Python's "not value" for a node: None, "", 0, False and
// empty collections.
func yamlFalsy(n *yaml.Node, d *yamlDoc) bool {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		return len(n.Content) == 0
	}
	v, err := d.scalar(n)
	if err != nil {
		return false
	}
	return yamlFalsyValue(v)
}

// varName writes a variable name that YAML typed (on: is true) as
// Ansible's JSON shows it.
func varName(k any) string {
	if s, ok := jsonKey(k); ok {
		return s
	}
	return strOf(k)
}
