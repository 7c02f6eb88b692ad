package sshnative

import (
	"fmt"
	"sort"
	"strings"

	"github.com/0ops/exed/inventory"
)

// unhonouredVars are the variables of Ansible's ssh connection and sudo
// and su become plugins that sshnative does not use, with why.
var unhonouredVars = map[string]string{
	"ansible_password":                   "sshnative logs in with keys and ssh-agent only",
	"ansible_ssh_pass":                   "sshnative logs in with keys and ssh-agent only",
	"ansible_ssh_password":               "sshnative logs in with keys and ssh-agent only",
	"ansible_sshpass_prompt":             "sshnative logs in with keys and ssh-agent only",
	"ansible_pkcs11_provider":            "sshnative does not use PKCS#11 keys",
	"ansible_ssh_executable":             "sshnative speaks SSH itself and runs no ssh binary",
	"ansible_ssh_retries":                "sshnative connects once per command; a failure is UNREACHABLE",
	"ansible_ssh_use_tty":                "sshnative runs commands without a terminal",
	"ansible_shell_executable":           "sshnative runs commands with /bin/sh",
	"ansible_ssh_transfer_method":        "sshnative transfers no files",
	"ansible_scp_if_ssh":                 "sshnative transfers no files",
	"ansible_scp_extra_args":             "sshnative transfers no files",
	"ansible_sftp_extra_args":            "sshnative transfers no files",
	"ansible_sftp_batch_mode":            "sshnative transfers no files",
	"ansible_become_prompt_l10n":         "sshnative recognises su's prompt in any language",
	"ansible_su_prompt_l10n":             "sshnative recognises su's prompt in any language",
	"ansible_control_path":               "sshnative keeps its own pool of connections",
	"ansible_control_path_dir":           "sshnative keeps its own pool of connections",
	"ansible_ssh_control_path":           "sshnative keeps its own pool of connections",
	"ansible_ssh_control_path_dir":       "sshnative keeps its own pool of connections",
	"ansible_ssh_pipelining":             "sshnative always sends a command in one session",
	"ansible_pipelining":                 "sshnative always sends a command in one session",
	"ansible_paramiko_pty":               "sshnative runs commands without a terminal",
	"ansible_paramiko_host_key_checking": "use ansible_host_key_checking",
}

// sshArgVars are the variables holding ssh arguments, in the order
// Ansible writes them.
var sshArgVars = []string{"ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args"}

// warnings groups hosts by warning, keeping the warnings' first-seen
// order.
type warnings struct {
	order []string
	hosts map[string][]string
}

func (w *warnings) add(msg, host string) {
	if w.hosts == nil {
		w.hosts = map[string][]string{}
	}
	if _, ok := w.hosts[msg]; !ok {
		w.order = append(w.order, msg)
	}
	w.hosts[msg] = append(w.hosts[msg], host)
}

// maxNamedHosts bounds the hosts a warning names.
const maxNamedHosts = 10

func (w *warnings) list() []string {
	out := make([]string, 0, len(w.order))
	for _, msg := range w.order {
		hosts := w.hosts[msg]
		names := hosts
		more := ""
		if len(names) > maxNamedHosts {
			names = names[:maxNamedHosts]
			more = fmt.Sprintf(" and %d more", len(hosts)-maxNamedHosts)
		}
		label := "host"
		if len(hosts) > 1 {
			label = "hosts"
		}
		out = append(out, fmt.Sprintf("%s (%s %s%s)", msg, label, strings.Join(names, ", "), more))
	}
	return out
}

// checkInventory lists, at load, what the inventory and ssh_config ask
// for that sshnative does not honour: each connection or become variable
// it does not use and each ssh argument it ignores, with the hosts that
// set them; and what makes hosts UNREACHABLE (an unsupported connection, an
// ssh argument or ssh_config keyword that would change where ssh
// connects) or FAILED (an unsupported become method) when they are
// targeted.
func (x *Executor) checkInventory(inv *inventory.Inventory) []string {
	var w warnings
	hosts := inv.Hosts()
	type argsKey struct{ name, value string }
	argNotes := map[argsKey][]string{}
	check := func(name string, h *inventory.Host) {
		var unused []string
		for k := range h.Vars {
			if _, ok := unhonouredVars[k]; ok {
				unused = append(unused, k)
			}
		}
		sort.Strings(unused)
		if h.Implicit && h.Local() {
			unused = nil // group all's ssh settings mean nothing for it
		}
		for _, k := range unused {
			w.add(fmt.Sprintf("%s is not honoured: %s", k, unhonouredVars[k]), name)
		}
		c, err := settingsOf(inventory.VarsOf(h), x.defaults)
		if err != nil {
			w.add(fmt.Sprintf("%v: these hosts are UNREACHABLE", err), name)
			return
		}
		switch c.Connection {
		case "local":
			if c.Become && c.BecomeUser != x.resolver.localUser {
				w.add(fmt.Sprintf("ansible_become to %s on a local connection is not supported by sshnative: these hosts are FAILED", c.BecomeUser), name)
			}
			return
		case "ssh", "paramiko_ssh":
		default:
			w.add(fmt.Sprintf("ansible_connection=%s is not supported by sshnative (ssh and local are): these hosts are UNREACHABLE", c.Connection), name)
			return
		}
		if c.Become && !becomeMethods[c.BecomeMethod] {
			w.add(fmt.Sprintf("ansible_become_method=%s is not supported by sshnative (sudo and su are): these hosts are FAILED", c.BecomeMethod), name)
		}
		for i, value := range []string{c.SSHArgs, c.SSHCommonArgs, c.SSHExtraArgs} {
			if value == "" {
				continue
			}
			key := argsKey{sshArgVars[i], value}
			notes, ok := argNotes[key]
			if !ok {
				notes = sshArgNotes(key.name, value)
				argNotes[key] = notes
			}
			for _, n := range notes {
				w.add(n, name)
			}
		}
	}
	for _, name := range hosts {
		if h := inv.Host(name); h != nil {
			check(name, h)
		}
	}
	// The implicit localhost is not in "all" but can be targeted: its
	// variables (group all's, host_vars/localhost) are checked too.
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if h := inv.Host(name); h != nil && h.Implicit {
			check(name, h)
		}
	}
	out := w.list()
	if files, err := x.resolver.configs.Load().load(x.resolver.configPaths); err == nil {
		out = append(out, sshConfigNotes(files)...)
	}
	return out
}

// sshArgNotes are the warnings about one ssh argument setting.
func sshArgNotes(name, value string) []string {
	words, err := splitShellWords(value)
	if err != nil {
		return []string{argsError(name, value, err).Error() + ": these hosts are UNREACHABLE"}
	}
	a := &sshArgs{}
	a.parse(words)
	var out []string
	if len(a.ignored) > 0 {
		out = append(out, fmt.Sprintf("%s: sshnative ignores %s", name, strings.Join(a.ignored, ", ")))
	}
	if len(a.refused) > 0 {
		out = append(out, fmt.Sprintf("%s: sshnative cannot apply %s, which would change where ssh connects: these hosts are UNREACHABLE", name, strings.Join(a.refused, ", ")))
	}
	return out
}

// sshConfigNotes are the warnings about ssh_config keywords that
// sshnative cannot apply and that would change where ssh connects.
func sshConfigNotes(files *sshConfigFiles) []string {
	var out []string
	files.eachFile(func(f *configFile) {
		for _, b := range f.blocks {
			block := b.text
			if block == "" {
				block = "before any Host or Match line"
			}
			for _, it := range b.items {
				if it.kv == nil {
					continue
				}
				key := strings.ToLower(it.kv.Key)
				if keywordRefused(key, it.kv.Value) {
					out = append(out, fmt.Sprintf("ssh_config %s:%d: sshnative cannot apply %s %s (%s): the hosts it matches are UNREACHABLE",
						f.path, it.kv.Pos().Line, it.kv.Key, it.kv.Value, block))
				}
			}
		}
	})
	return out
}
