package inventory

import (
	"fmt"
	"math"
	"strings"

	"github.com/0ops/exed/ansiblecfg"
)

// Conn is how Ansible reaches a host: the settings its ssh connection
// plugin and its become plugins take from the host's variables. Where a
// setting has several spellings, the later one in the plugin's list wins
// when both are set, as in Ansible (ansible_ssh_host over ansible_host,
// ansible_sudo_user over ansible_become_user). A variable set to null
// counts as unset.
type Conn struct {
	// Connection is the connection plugin ansible_connection names, as
	// ansible-core resolves the name (see ConnectionPlugin): "ssh" when
	// unset, "local" for the implicit localhost.
	Connection string
	// Address is what to connect to: ansible_ssh_host, else ansible_host,
	// else the inventory name.
	Address string
	// Port is ansible_ssh_port, else ansible_port, 1-65535; 0 when unset
	// (ssh's own default: ssh_config, else 22).
	Port int
	// User is ansible_ssh_user, else ansible_user; "" when unset.
	User string
	// PrivateKeyFile is ansible_ssh_private_key_file, else
	// ansible_private_key_file, resolved as Ansible resolves a path: $VAR
	// and ~ expanded, then absolute from the working directory.
	PrivateKeyFile string
	// Password is ansible_ssh_password, else ansible_ssh_pass, else
	// ansible_password. Never log it.
	Password string
	// SSHArgs, SSHCommonArgs and SSHExtraArgs are ansible_ssh_args,
	// ansible_ssh_common_args and ansible_ssh_extra_args.
	SSHArgs, SSHCommonArgs, SSHExtraArgs string
	// ShellType is ansible_shell_type; "" when unset (sh).
	ShellType string

	// Become is ansible_become, read as Ansible reads a boolean (yes, on,
	// true, 1, ... any case).
	Become bool
	// BecomeMethod is the become plugin ansible_become_method names, as
	// ansible-core resolves the name (see BecomePlugin); "sudo" when unset.
	BecomeMethod string
	// BecomeUser is ansible_become_user, or the method's own spelling
	// (ansible_sudo_user, ansible_su_user); "root" when unset.
	BecomeUser string
	// BecomeExe and BecomeFlags are ansible_become_exe and
	// ansible_become_flags (or the method's spelling); for sudo they
	// default to "sudo" and "-H -S -n", for su to "su" and "".
	BecomeExe, BecomeFlags string
	// BecomePassword is ansible_sudo_pass or ansible_su_pass, else
	// ansible_become_pass, else ansible_become_password. Never log it.
	BecomePassword string
}

// Escalates tells whether Ansible escalates privileges for a command on
// the host: Become is set and the become user differs from the remote user
// (Ansible runs as the login user when they are the same, unless
// allow_same_user is set). User "" is no remote user set; a caller that
// applies a default remote user, as Ansible's remote_user setting does,
// sets User first.
func (c Conn) Escalates() bool {
	return c.Become && (c.BecomeUser != c.User || c.BecomeUser == "" && c.User == "")
}

// becomeVars are the become plugins' variables, each list in the plugin's
// order (the last one set wins), as indices in connVarNames.
type becomeVars struct {
	user, exe, flags, pass []int
	exeDefault, flagsDef   string
}

// connVarNames are the variables Conn reads, each once; a host's values
// are read into an array in this order (connValues).
var connVarNames = [...]string{
	"ansible_connection", "ansible_host", "ansible_ssh_host", "ansible_user", "ansible_ssh_user",
	"ansible_private_key_file", "ansible_ssh_private_key_file",
	"ansible_password", "ansible_ssh_pass", "ansible_ssh_password",
	"ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_shell_type",
	"ansible_become_method", "ansible_port", "ansible_ssh_port", "ansible_become",
	"ansible_become_user", "ansible_sudo_user", "ansible_su_user",
	"ansible_become_exe", "ansible_sudo_exe", "ansible_su_exe",
	"ansible_become_flags", "ansible_sudo_flags", "ansible_su_flags",
	"ansible_become_password", "ansible_become_pass", "ansible_sudo_pass", "ansible_su_pass",
}

// connVarSlot is each of connVarNames' index.
var connVarSlot = func() map[string]int {
	m := make(map[string]int, len(connVarNames))
	for i, n := range connVarNames {
		m[n] = i
	}
	return m
}()

// slots are the indices of names in connVarNames.
func slots(names ...string) []int {
	out := make([]int, len(names))
	for i, n := range names {
		s, ok := connVarSlot[n]
		if !ok {
			panic("inventory: " + n + " is not among connVarNames")
		}
		out[i] = s
	}
	return out
}

// connValues are a host's values of connVarNames, by index; nil: unset
// (a variable set to null counts as unset).
type connValues [len(connVarNames)]any

// setFrom sets the values of connVarNames that vars holds (a value
// set to null too: a later source's null unsets an earlier value, as in
// a merged map): by walking vars when it has fewer entries than there
// are names (most sources), else by looking each name up.
func (out *connValues) setFrom(vars map[string]any) {
	if len(vars) <= len(connVarNames) {
		for k, v := range vars {
			out.set(k, v)
		}
		return
	}
	for i, n := range connVarNames {
		if v, ok := vars[n]; ok {
			out[i] = v
		}
	}
}

// set sets the value of k when it is one of connVarNames.
func (out *connValues) set(k string, v any) {
	if strings.HasPrefix(k, "ansible_") {
		if i, ok := connVarSlot[k]; ok {
			out[i] = v
		}
	}
}

// setDefaults sets the values defaults gives for the names still unset.
func (out *connValues) setDefaults(defaults map[string]any) {
	for k, d := range defaults {
		if i, ok := connVarSlot[k]; ok && out[i] == nil {
			out[i] = d
		}
	}
}

var becomeMethods = map[string]becomeVars{
	"sudo": {
		user:       slots("ansible_become_user", "ansible_sudo_user"),
		exe:        slots("ansible_become_exe", "ansible_sudo_exe"),
		flags:      slots("ansible_become_flags", "ansible_sudo_flags"),
		pass:       slots("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"),
		exeDefault: "sudo", flagsDef: "-H -S -n",
	},
	"su": {
		user:       slots("ansible_become_user", "ansible_su_user"),
		exe:        slots("ansible_become_exe", "ansible_su_exe"),
		flags:      slots("ansible_become_flags", "ansible_su_flags"),
		pass:       slots("ansible_become_password", "ansible_become_pass", "ansible_su_pass"),
		exeDefault: "su",
	},
}

// genericBecome is for the methods exed does not know: Ansible's common
// spellings, no defaults.
var genericBecome = becomeVars{
	user:  slots("ansible_become_user"),
	exe:   slots("ansible_become_exe"),
	flags: slots("ansible_become_flags"),
	pass:  slots("ansible_become_password", "ansible_become_pass"),
}

// The slots of the variables Conn reads outside the become plugins'.
var (
	slotConnection     = slots("ansible_connection")
	slotAddress        = slots("ansible_host", "ansible_ssh_host")
	slotUser           = slots("ansible_user", "ansible_ssh_user")
	slotPrivateKeyFile = slots("ansible_private_key_file", "ansible_ssh_private_key_file")
	slotPassword       = slots("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
	slotSSHArgs        = slots("ansible_ssh_args")
	slotSSHCommonArgs  = slots("ansible_ssh_common_args")
	slotSSHExtraArgs   = slots("ansible_ssh_extra_args")
	slotShellType      = slots("ansible_shell_type")
	slotBecomeMethod   = slots("ansible_become_method")
	slotPort           = slots("ansible_port", "ansible_ssh_port")
	slotBecome         = slots("ansible_become")
)

// Conn resolves the host's connection. An error names the variable and
// says what is wrong with it: a port that is not a number from 1 to 65535,
// a become flag that is not a boolean, a value that is a Jinja2 template
// (which Ansible renders and exed does not), an ansible-vault encrypted
// value, a list or mapping where a string is needed.
func (h *Host) Conn() (Conn, error) {
	var vals connValues
	vals.setFrom(h.Vars)
	return connOf(h.Name, &vals)
}

// connOf is Conn of the host name whose connection variables are vals.
func connOf(name string, vals *connValues) (Conn, error) {
	c := Conn{Connection: "ssh", Address: name, BecomeMethod: "sudo", BecomeUser: "root"}
	var err error
	str := func(dst *string, slots []int) {
		if err != nil {
			return
		}
		name, v, ok := lastSet(vals, slots)
		if !ok {
			return
		}
		*dst, err = textVar(name, v)
	}
	str(&c.Connection, slotConnection)
	str(&c.Address, slotAddress)
	str(&c.User, slotUser)
	str(&c.PrivateKeyFile, slotPrivateKeyFile)
	str(&c.Password, slotPassword)
	str(&c.SSHArgs, slotSSHArgs)
	str(&c.SSHCommonArgs, slotSSHCommonArgs)
	str(&c.SSHExtraArgs, slotSSHExtraArgs)
	str(&c.ShellType, slotShellType)
	str(&c.BecomeMethod, slotBecomeMethod)
	if err != nil {
		return Conn{}, err
	}
	c.Connection = ConnectionPlugin(c.Connection)
	c.BecomeMethod = BecomePlugin(c.BecomeMethod)
	if c.PrivateKeyFile != "" {
		c.PrivateKeyFile = ansiblecfg.ResolvePath(c.PrivateKeyFile, "")
	}
	if c.Address == "" {
		return Conn{}, fmt.Errorf("the host's address (ansible_host or ansible_ssh_host) is empty")
	}
	if name, v, ok := lastSet(vals, slotPort); ok {
		if c.Port, err = portVar(name, v); err != nil {
			return Conn{}, err
		}
	}
	if name, v, ok := lastSet(vals, slotBecome); ok {
		if c.Become, err = boolVar(name, v); err != nil {
			return Conn{}, err
		}
	}
	bv, known := becomeMethods[c.BecomeMethod]
	if !known {
		bv = genericBecome
		c.BecomeUser = ""
	}
	c.BecomeExe, c.BecomeFlags = bv.exeDefault, bv.flagsDef
	str(&c.BecomeUser, bv.user)
	str(&c.BecomeExe, bv.exe)
	str(&c.BecomeFlags, bv.flags)
	str(&c.BecomePassword, bv.pass)
	if err != nil {
		return Conn{}, err
	}
	return c, nil
}

// ConnectionPlugin is the built-in connection plugin an ansible_connection
// value names, as ansible-core 2.14 resolves it: the plugin's name for
// its short name and its ansible.builtin. and ansible.legacy. forms
// ("ansible.builtin.local" is "local"), "paramiko_ssh" for its alias
// "paramiko", and "ssh" for "smart" (which chooses ssh). Any other value
// is returned as written.
func ConnectionPlugin(name string) string {
	short := name
	for _, prefix := range []string{"ansible.builtin.", "ansible.legacy."} {
		if strings.HasPrefix(name, prefix) {
			short = name[len(prefix):]
			if !builtinConnections[short] {
				return name // no such plugin: "ansible.builtin.smart"
			}
		}
	}
	switch short {
	case "smart":
		if short == name {
			return "ssh"
		}
	case "paramiko":
		if short == name {
			return "paramiko_ssh"
		}
	}
	if builtinConnections[short] {
		return short
	}
	return name
}

// BecomePlugin is the built-in become plugin an ansible_become_method
// value names, as ansible-core 2.14 resolves it: the plugin's name for
// its short name and its ansible.builtin. and ansible.legacy. forms
// ("ansible.builtin.sudo" is "sudo"). Any other value is returned as
// written.
func BecomePlugin(name string) string {
	for _, prefix := range []string{"ansible.builtin.", "ansible.legacy."} {
		if short := strings.TrimPrefix(name, prefix); short != name && builtinBecomes[short] {
			return short
		}
	}
	return name
}

// builtinBecomes are ansible-core's become plugins.
var builtinBecomes = map[string]bool{"sudo": true, "su": true, "runas": true}

// builtinConnections are ansible-core's connection plugins.
var builtinConnections = map[string]bool{"local": true, "ssh": true, "paramiko_ssh": true, "psrp": true, "winrm": true}

// lastSet returns the last of slots that vals sets, with its name.
func lastSet(vals *connValues, slots []int) (string, any, bool) {
	for i := len(slots) - 1; i >= 0; i-- {
		if v := vals[slots[i]]; v != nil {
			return connVarNames[slots[i]], v, true
		}
	}
	return "", nil, false
}

// textVar reads a variable Ansible uses as text: scalars as Python's str()
// writes them.
func textVar(name string, v any) (string, error) {
	switch x := v.(type) {
	case []any, map[string]any:
		return "", fmt.Errorf("%s must be a string, not a %s", name, pyTypeName(v))
	case Vaulted:
		return "", fmt.Errorf("%s is encrypted with ansible-vault, which exed does not decrypt", name)
	case Unsafe:
		return string(x), nil
	case string:
		if hasTemplate(x) {
			return "", fmt.Errorf("%s is a Jinja2 template (%s), which exed does not render", name, x)
		}
		return x, nil
	}
	return strOf(v), nil
}

// portVar reads a port as Ansible's int option does.
func portVar(name string, v any) (int, error) {
	var p int
	switch x := v.(type) {
	case int:
		p = x
	case float64:
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("%s %v is not a port number", name, x)
		}
		p = int(x)
	case string:
		if hasTemplate(x) {
			return 0, fmt.Errorf("%s is a Jinja2 template (%s), which exed does not render", name, x)
		}
		n, err := pyInt(x)
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a port number", name, x)
		}
		p = n
	default:
		return 0, fmt.Errorf("%s %v is not a port number", name, v)
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s %d is not a port number (1-65535)", name, p)
	}
	return p, nil
}

// boolVar is Ansible's boolean(value, strict=True).
func boolVar(name string, v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case string:
		if hasTemplate(x) {
			return false, fmt.Errorf("%s is a Jinja2 template (%s), which exed does not render", name, x)
		}
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "y", "yes", "on", "1", "true", "t":
			return true, nil
		case "n", "no", "off", "0", "false", "f":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s %v is not a valid boolean (use true or false)", name, v)
}
