package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/0ops/exed/ansiblecfg"
)

// Options tune Load.
type Options struct {
	// ScriptTimeout bounds each run of an executable inventory ("--list",
	// and "--host NAME" for every host when "_meta" is missing); zero
	// means DefaultScriptTimeout.
	ScriptTimeout time.Duration
	// PlaybookDir is the directory whose group_vars/ and host_vars/ apply
	// above the inventory's, as Ansible applies the playbook directory's
	// (for ad-hoc commands and ansible-inventory: the working directory):
	// group_vars/all above the inventory's group_vars/all, group_vars/GROUP
	// above the inventory's, host_vars/HOST above all else. "" is none.
	PlaybookDir string
}

// Load reads inventory sources as "ansible -i SOURCE" does, each one in
// turn (repeating -i): an INI file, a YAML or JSON file, an executable
// script, or a directory of those. A source is a path, with $VAR and ~
// expanded, relative to the working directory (a script is run by that
// path, never looked up in $PATH). See the package documentation for the
// rules. Every error starts with the file's name, and its line where there
// is one; a source that yields no inventory is an error (Ansible only
// warns).
func Load(sources ...string) (*Inventory, error) { return Options{}.Load(sources...) }

// Load is the package's Load with these options.
func (o Options) Load(sources ...string) (*Inventory, error) {
	if o.ScriptTimeout <= 0 {
		o.ScriptTimeout = DefaultScriptTimeout
	}
	inv := newInventory()
	var used []string
	for _, s := range sources {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		// As ansible -i: $VAR and ~ expanded, a relative path from the
		// working directory. An absolute path also keeps a script from
		// being looked up in $PATH.
		path := ansiblecfg.ResolvePath(s, "")
		parsed, err := inv.parseSource(path, o, false)
		if err != nil {
			return nil, err
		}
		if !parsed {
			return nil, fmt.Errorf("%s: no inventory found: every file in the directory is one Ansible ignores (%s)", s, ignoredText)
		}
		used = append(used, path)
	}
	if len(used) == 0 {
		return nil, errors.New("inventory: no inventory source given")
	}
	inv.reconcile()
	if err := inv.loadVarsFiles(used, o.PlaybookDir); err != nil {
		return nil, err
	}
	inv.freeze()
	return inv, nil
}

// ParseSources splits a comma-separated list of inventory sources, the
// form of ansible.cfg's "inventory" and of exed's [sshnative] inventory.
func ParseSources(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Parse reads one inventory from r as Ansible reads a file of that name:
// YAML when the name has no extension or .yml, .yaml or .json and the text
// is a YAML inventory, else INI. Scripts, directories and group_vars/
// host_vars are for Load.
func Parse(r io.Reader, name string) (*Inventory, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	inv := newInventory()
	if err := inv.parseContent(name, data); err != nil {
		return nil, err
	}
	inv.reconcile()
	inv.freeze()
	return inv, nil
}

// ignoredRE is Ansible's rule for the entries of an inventory directory:
// hidden names, host_vars, group_vars and vars_plugins, and the default
// INVENTORY_IGNORE_EXTS of ansible-core 2.14 (note .ini: an INI file in an
// inventory directory is not read).
var (
	ignoredAlwaysRE = regexp.MustCompile(`^\.|^host_vars$|^group_vars$|^vars_plugins$`)
	ignoredExtRE    = regexp.MustCompile(`(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.ini|\.cfg|\.retry)$`)
)

const ignoredText = "names starting with '.', group_vars, host_vars and names ending in .pyc, .pyo, .swp, .bak, ~, .rpm, .md, .txt, .rst, .orig, .ini, .cfg or .retry"

// parseSource reads a file or a directory, reporting whether it held an
// inventory.
func (inv *Inventory) parseSource(path string, o Options, inDir bool) (bool, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("%s: no such file or directory", path)
		}
		return false, err
	}
	if !info.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return false, err
		}
		err = inv.parseFile(path, info, data, o)
		if err != nil && inDir {
			err = fmt.Errorf("%w (every file in an inventory directory is read as an inventory, except %s)", err, ignoredText)
		}
		return err == nil, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return false, err
	}
	parsed := false
	for _, e := range entries { // sorted by name, as Ansible sorts them
		name := e.Name()
		if ignoredAlwaysRE.MatchString(name) {
			continue
		}
		if ignoredExtRE.MatchString(name) {
			if strings.HasSuffix(name, ".ini") || strings.HasSuffix(name, ".cfg") {
				inv.warnf("%s: not read: Ansible ignores files ending in %s inside an inventory directory", filepath.Join(path, name), filepath.Ext(name))
			}
			continue
		}
		p, err := inv.parseSource(filepath.Join(path, name), o, true)
		if err != nil {
			return false, err
		}
		if !p {
			inv.warnf("%s: no inventory found in this directory", filepath.Join(path, name))
		}
		parsed = parsed || p
	}
	return parsed, nil
}

// parseFile tries the kinds of inventory in Ansible's plugin order:
// script, YAML, INI.
func (inv *Inventory) parseFile(path string, info os.FileInfo, data []byte, o Options) error {
	var scriptErr error
	if isScript(path, info) {
		err := inv.parseScript(path, o.ScriptTimeout)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errNotExecutable) {
			scriptErr = err
		}
	}
	err := inv.parseContent(path, data)
	if scriptErr != nil && err != nil {
		return scriptErr
	}
	return err
}

var yamlExts = map[string]bool{"": true, ".yml": true, ".yaml": true, ".json": true}

// parseContent reads data as a YAML inventory when the name allows and the
// text is one, else as INI; when both fail, the error of the likelier kind
// is given.
func (inv *Inventory) parseContent(path string, data []byte) error {
	ext := pyExt(path)
	var yamlErr error
	if yamlExts[ext] {
		root, d, err := loadYAML(path, data, inv.warn)
		if err == nil {
			err = inv.parseYAMLInventory(path, root, d)
		}
		if err == nil {
			return nil
		}
		if errors.Is(err, errPluginConfig) {
			return fmt.Errorf("%v, which exed cannot run; export its hosts with ansible-inventory -i %s --list --yaml --output hosts.yml and give exed that file", err, path)
		}
		yamlErr = err
	}
	iniErr := inv.parseINI(path, data)
	switch {
	case iniErr == nil:
		return nil
	case ext == ".toml":
		return fmt.Errorf("%s: TOML inventories are not supported (and as INI: %v)", path, iniErr)
	case yamlErr != nil && (ext != "" || looksLikeYAML(data)):
		return yamlErr
	}
	return iniErr
}

var yamlKeyRE = regexp.MustCompile(`^[^\s=\[\]#;]+:(\s|$)`)

// looksLikeYAML tells whether text without a telling extension was meant
// as YAML: its first line that says something is "---" or a "key:".
func looksLikeYAML(data []byte) bool {
	for _, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		return strings.HasPrefix(s, "---") || yamlKeyRE.MatchString(s)
	}
	return false
}

// pyExt is Python's os.path.splitext(path)[1]: leading dots of the base
// name do not start an extension.
func pyExt(path string) string {
	base := strings.TrimLeft(filepath.Base(path), ".")
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		return base[i:]
	}
	return ""
}
