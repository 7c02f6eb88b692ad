package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v4"
)

// DefaultScriptTimeout bounds each run of an inventory script when
// Options.ScriptTimeout is zero. Ansible has no bound.
const DefaultScriptTimeout = 30 * time.Second

// maxScriptStderr bounds how much of a script's stderr an error quotes.
const maxScriptStderr = 2048

// errNotExecutable means the file could not be run as a program at all
// (no shebang and not a binary), so it is read as an inventory file.
var errNotExecutable = errors.New("not executable")

// isScript is the script plugin's verify_file: an executable file, or one
// starting with "#!".
func isScript(path string, info os.FileInfo) bool {
	if info.Mode()&0o111 != 0 {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2)
	n, _ := f.Read(head)
	return n == 2 && string(head) == "#!"
}

// runScript runs path with args, bounded by timeout, and returns stdout.
func runScript(path string, timeout time.Duration, args ...string) ([]byte, []byte, error) {
	if !strings.Contains(path, "/") {
		path = "./" + path // a file here, not a program in $PATH
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The script's children go with it on a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	run := path + " " + strings.Join(args, " ")
	switch {
	case err == nil:
		return stdout.Bytes(), stderr.Bytes(), nil
	case ctx.Err() != nil:
		return nil, stderr.Bytes(), fmt.Errorf("inventory script %s did not finish within %s%s", run, timeout, stderrText(stderr.Bytes()))
	case errors.Is(err, syscall.ENOEXEC) || errors.Is(err, syscall.EACCES):
		return nil, nil, errNotExecutable
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stdout.Bytes(), stderr.Bytes(), &scriptExitError{run: run, status: exit.ExitCode(), stderr: stderr.Bytes()}
	}
	return nil, nil, fmt.Errorf("inventory script %s: %v", run, err)
}

// scriptExitError is a script that ran and exited non-zero.
type scriptExitError struct {
	run    string
	status int
	stderr []byte
}

func (e *scriptExitError) Error() string {
	return fmt.Sprintf("inventory script %s exited with status %d%s", e.run, e.status, stderrText(e.stderr))
}

func stderrText(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return " (no stderr)"
	}
	if len(s) > maxScriptStderr {
		s = s[:maxScriptStderr] + "..."
	}
	return ": " + s
}

// parseScript runs an executable inventory as Ansible's script plugin
// does: "--list" gives JSON groups (a list of hosts, or hosts, vars and
// children); "_meta.hostvars" gives every host's variables, and without it
// each host's come from "--host NAME".
func (inv *Inventory) parseScript(path string, timeout time.Duration) error {
	out, stderr, err := runScript(path, timeout, "--list")
	if err != nil {
		return err
	}
	if !json.Valid(out) {
		var syn *json.SyntaxError
		msg := "not JSON"
		if err := json.Unmarshal(out, new(any)); errors.As(err, &syn) {
			msg = fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, err)
		}
		return fmt.Errorf("inventory script %s --list: %s%s", path, msg, stderrText(stderr))
	}
	where := path + " --list"
	root, d, err := loadYAML(where, out, inv.warn)
	if err != nil {
		return err
	}
	if root == nil || resolve(root).Kind != yaml.MappingNode {
		return fmt.Errorf("inventory script %s --list: the output must be a JSON object of groups%s", path, stderrText(stderr))
	}
	ps, err := d.pairs(resolve(root))
	if err != nil {
		return err
	}
	var meta *yaml.Node
	var hosts []string
	seen := map[string]bool{}
	for _, p := range ps {
		name := strOf(p.key)
		if name == "_meta" {
			if m := resolve(p.valNode); m.Kind == yaml.MappingNode {
				mp, err := d.pairs(m)
				if err != nil {
					return err
				}
				for _, e := range mp {
					if e.key == "hostvars" {
						meta = resolve(e.valNode)
					}
				}
			}
			continue
		}
		if err := inv.scriptGroup(where, d, name, resolve(p.valNode), func(h string) {
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}); err != nil {
			return err
		}
	}
	var metaVars map[string]*yaml.Node
	if meta != nil {
		if meta.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: _meta.hostvars must be an object of hosts, got a %s", where, yamlKind(meta, d))
		}
		mp, err := d.pairs(meta)
		if err != nil {
			return err
		}
		metaVars = make(map[string]*yaml.Node, len(mp))
		for _, e := range mp {
			metaVars[strOf(e.key)] = e.valNode
		}
	}
	for _, name := range hosts {
		h := inv.hostByName[name]
		var vars any = map[string]any{}
		hostWhere := where
		if meta != nil {
			if n, ok := metaVars[name]; ok {
				if vars, err = d.value(n, 0); err != nil {
					return err
				}
			}
		} else {
			hostWhere = path + " --host " + name
			if vars, err = inv.scriptHostVars(path, name, timeout); err != nil {
				return err
			}
		}
		m, ok := vars.(map[string]any)
		if !ok {
			// Ansible 2.14 fails on null and on empty --host output too.
			return fmt.Errorf("%s: the variables of host %q must be a JSON object, got %s", hostWhere, name, jsonText(vars))
		}
		for _, k := range sortedKeys(m) {
			inv.setHostVar(h, k, m[k], hostWhere)
		}
	}
	return nil
}

// scriptGroup is the script plugin's _parse_group.
func (inv *Inventory) scriptGroup(where string, d *yamlDoc, name string, data *yaml.Node, addHost func(string)) error {
	g := inv.addGroup(name)
	var hostsNode, varsNode, childrenNode *yaml.Node
	switch data.Kind {
	case yaml.MappingNode:
		ps, err := d.pairs(data)
		if err != nil {
			return err
		}
		for _, p := range ps {
			switch p.key {
			case "hosts":
				hostsNode = resolve(p.valNode)
			case "vars":
				varsNode = resolve(p.valNode)
			case "children":
				childrenNode = resolve(p.valNode)
			}
		}
		if hostsNode == nil && varsNode == nil && childrenNode == nil {
			// A group of one host named like it, holding these variables.
			hostsNode = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: name}}}
			varsNode = data
		}
	default:
		hostsNode = data
	}
	if hostsNode != nil {
		if hostsNode.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: group %q has bad data for its host list: it must be a list", where, name)
		}
		for _, hn := range hostsNode.Content {
			v, err := d.value(hn, 0)
			if err != nil {
				return err
			}
			hname, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s: group %q lists host %v, which is not a string", where, name, v)
			}
			if _, err := inv.addHost(hname, g, 0, where); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
			addHost(hname)
		}
	}
	if varsNode != nil {
		vars, err := d.value(varsNode, 0)
		if err != nil {
			return err
		}
		m, ok := vars.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: group %q has bad data for its variables: they must be an object", where, name)
		}
		for _, k := range sortedKeys(m) {
			if err := inv.setGroupVar(g, k, m[k]); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
		}
	}
	if childrenNode != nil {
		var names []string
		switch childrenNode.Kind {
		case yaml.SequenceNode:
			for _, c := range childrenNode.Content {
				v, err := d.value(c, 0)
				if err != nil {
					return err
				}
				names = append(names, strOf(v))
			}
		case yaml.MappingNode:
			ps, err := d.pairs(childrenNode)
			if err != nil {
				return err
			}
			for _, p := range ps {
				names = append(names, strOf(p.key))
			}
		default:
			return fmt.Errorf("%s: group %q has bad data for its children: they must be a list", where, name)
		}
		for _, c := range names {
			if err := inv.addChild(g, inv.addGroup(c)); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
		}
	}
	return nil
}

// scriptHostVars runs "--host NAME"; empty output is no variables. Like
// Ansible, the exit status is not looked at, but the output must parse.
func (inv *Inventory) scriptHostVars(path, name string, timeout time.Duration) (any, error) {
	out, stderr, err := runScript(path, timeout, "--host", name)
	var exit *scriptExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, err
	}
	where := path + " --host " + name
	root, d, perr := loadYAML(where, out, inv.warn)
	if perr != nil {
		return nil, fmt.Errorf("%v%s", perr, stderrText(stderr))
	}
	return d.value(root, 0)
}

func jsonText(v any) string {
	if v == nil {
		return "nothing (null or empty output)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
