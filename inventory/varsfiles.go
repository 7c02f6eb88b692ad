package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/0ops/exed/ansiblecfg"
)

// varsDir holds the group_vars/ and host_vars/ variables found beside one
// inventory source: for each group or host, its files combined in order.
type varsDir struct {
	groups map[string]map[string]any
	hosts  map[string]map[string]any
}

// varsExts are the extensions Ansible tries after the bare name
// (YAML_FILENAME_EXTENSIONS), in order.
var varsExts = []string{"", ".yml", ".yaml", ".json"}

// loadVarsFiles reads group_vars/ and host_vars/ beside each source (in the
// source's directory, or in it when it is one), and in playbookDir unless
// it is "", as Ansible's host_group_vars plugin does.
func (inv *Inventory) loadVarsFiles(sources []string, playbookDir string) error {
	cache := map[string]*varsDir{}
	var groupNames, hostNames []string
	for _, g := range inv.groups {
		groupNames = append(groupNames, g.name)
	}
	for _, h := range inv.hosts {
		hostNames = append(hostNames, h.name)
	}
	load := func(dir string) (*varsDir, error) {
		vd, ok := cache[dir]
		if !ok {
			vd = &varsDir{}
			var err error
			if vd.groups, err = inv.loadEntityVars(filepath.Join(dir, "group_vars"), groupNames); err != nil {
				return nil, err
			}
			names := hostNames
			if inv.localhost == nil {
				// The implicit localhost reads host_vars/localhost too.
				names = append(names[:len(names):len(names)], "localhost", "127.0.0.1", "::1")
			}
			if vd.hosts, err = inv.loadEntityVars(filepath.Join(dir, "host_vars"), names); err != nil {
				return nil, err
			}
			cache[dir] = vd
		}
		if vd.groups == nil && vd.hosts == nil {
			return nil, nil
		}
		return vd, nil
	}
	for _, src := range sources {
		dir := src
		if info, err := os.Stat(src); err != nil || !info.IsDir() {
			dir = filepath.Dir(src)
		}
		vd, err := load(dir)
		if err != nil {
			return err
		}
		if vd != nil {
			inv.varDirs = append(inv.varDirs, vd)
		}
	}
	if playbookDir != "" {
		vd, err := load(ansiblecfg.ResolvePath(playbookDir, ""))
		if err != nil {
			return err
		}
		inv.playVars = vd
	}
	return nil
}

// loadEntityVars reads the variables of each named entity from dir, the
// way find_vars_files finds them: the first of NAME, NAME.yml, NAME.yaml,
// NAME.json that exists, and when it is a directory every file in it (and
// its subdirectories) without an extension or with one of those, in name
// order, skipping hidden names and backups (~).
func (inv *Inventory) loadEntityVars(dir string, names []string) (map[string]map[string]any, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil // no such directory: nothing to read
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, nil
	}
	if !info.IsDir() {
		inv.warnf("found %s that is not a directory, skipping it", dir)
		return nil, nil
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return nil, err
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.Name()] = true
	}
	out := map[string]map[string]any{}
	for _, name := range names {
		if strings.HasPrefix(name, string(os.PathSeparator)) {
			continue // Ansible skips chroot-like names such as /srv/root
		}
		files, err := findVarsFiles(real, name, present)
		if err != nil {
			return nil, err
		}
		var vars map[string]any
		for _, f := range files {
			m, err := inv.loadVarsFile(f)
			if err != nil {
				return nil, err
			}
			if m == nil {
				continue
			}
			if vars == nil {
				vars = map[string]any{}
			}
			for k, v := range m {
				vars[k] = v
			}
		}
		if vars != nil {
			out[name] = vars
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func findVarsFiles(dir, name string, present map[string]bool) ([]string, error) {
	for _, ext := range varsExts {
		// A name with a '/' is a path below dir, as in Ansible.
		if !strings.Contains(name, "/") && !present[name+ext] {
			continue
		}
		full := filepath.Join(dir, name+ext)
		info, err := os.Stat(full)
		if err != nil {
			continue // a dangling link does not exist for Ansible either
		}
		if info.IsDir() {
			return dirVarsFiles(full)
		}
		return []string{full}, nil
	}
	return nil, nil
}

func dirVarsFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		full := filepath.Join(dir, n)
		info, err := os.Stat(full)
		if err != nil {
			continue
		}
		ext := pyExt(n)
		switch {
		case info.IsDir() && ext == "":
			sub, err := dirVarsFiles(full)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case info.Mode().IsRegular() && (ext == "" || yamlExts[ext]):
			out = append(out, full)
		}
	}
	return out, nil
}

// loadVarsFile reads one vars file: a mapping, or nothing (an empty file).
func (inv *Inventory) loadVarsFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, warnings, err := ParseVars(data, path)
	for _, w := range warnings {
		inv.warn(w)
	}
	return m, err
}

// ParseVars reads a document of variables, YAML or JSON, as Ansible's
// loader reads a vars file (group_vars/, host_vars/, ansible-playbook's
// -e @file): YAML 1.1's types as PyYAML resolves them (yes is true, 0755
// is octal), merge keys, a repeated key keeping its last value with a
// warning. name is the document's name in errors and warnings (its path).
//
// The values are string, bool, int (*big.Int beyond 64 bits), float64,
// nil, []any, map[string]any, Unsafe (a !unsafe string) and Vaulted (a
// !vault one). An empty (or falsy) document is nil; one that is not a
// mapping is an error, as in Ansible; so is a file ansible-vault
// encrypted.
func ParseVars(data []byte, name string) (map[string]any, []string, error) {
	var warnings []string
	root, d, err := loadYAML(name, data, func(w string) { warnings = append(warnings, w) })
	if err != nil {
		return nil, warnings, err
	}
	if root == nil {
		return nil, warnings, nil
	}
	v, err := d.value(root, 0)
	if err != nil {
		return nil, warnings, err
	}
	if yamlFalsyValue(v) {
		return nil, warnings, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, warnings, fmt.Errorf("%s: a vars file must be a mapping of variable names to values, got %s", name, pyTypeName(v))
	}
	return m, warnings, nil
}

func yamlFalsyValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case int:
		return x == 0
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func pyTypeName(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
