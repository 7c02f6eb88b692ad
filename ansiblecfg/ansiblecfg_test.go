package ansiblecfg_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/0ops/exed/ansiblecfg"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ansible runs an ansible command in dir with env (and none of the
// caller's ANSIBLE_* settings) and returns its stdout.
func ansible(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	testenv.NeedBinary(t, name)
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANSIBLE_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ANSIBLE_LOCAL_TEMP="+filepath.Join(t.TempDir(), "tmp"), "ANSIBLE_NOCOLOR=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	var stderr []byte
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	require.NoError(t, err, "%s %v: %s", name, args, stderr)
	return string(out)
}

// dump is what `ansible-config dump --only-changed` shows for a file:
// base settings by name, and the ssh connection plugin's options.
func dump(t *testing.T, cfg, home string) (base, ssh map[string]string) {
	t.Helper()
	dir := t.TempDir()
	env := []string{"ANSIBLE_CONFIG=" + cfg, "HOME=" + home}
	line := regexp.MustCompile(`^(\w+)\((.*)\) = (.*)$`)
	parse := func(out string) map[string]string {
		m := map[string]string{}
		last := ""
		for _, l := range strings.Split(out, "\n") {
			g := line.FindStringSubmatch(l)
			switch {
			case g != nil && g[2] == cfg:
				m[g[1]], last = g[3], g[1]
			case g == nil && l != "" && last != "":
				m[last] += "\n" + l // a value of several lines
			default:
				last = ""
			}
		}
		return m
	}
	base = parse(ansible(t, dir, env, "ansible-config", "dump", "--only-changed"))
	out := ansible(t, dir, env, "ansible-config", "dump", "--only-changed", "-t", "connection")
	_, sshPart, _ := strings.Cut(out, "\nssh:\n")
	ssh = parse(sshPart)
	return base, ssh
}

func pyList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func pyBool(b *bool) string {
	if b == nil {
		return ""
	}
	if *b {
		return "True"
	}
	return "False"
}

func TestLoadReadsWhatAnsibleReads(t *testing.T) {
	for name, text := range map[string]string{
		"full": `# Comments start lines with # or ;
; like this
[defaults]
inventory = hosts, ./inv/ , ~/x.yml,$HOME/y
remote_user = "deploy" ; an inline comment needs a space before ;
remote_port = 2222
private_key_file = keys/id
host_key_checking = False
timeout = 30
ask_pass = no

[privilege_escalation]
become = yes
become_user = app
become_method = su
become_exe = /usr/bin/su
become_flags = -l
become_ask_pass = false

[ssh_connection]
ssh_args = -o ControlMaster=no # a hash is no comment
ssh_common_args = -o ProxyJump=bastion
ssh_extra_args = -o ServerAliveInterval=5
`,
		"sparse": `[defaults]
REMOTE_USER: ops
inventory = /abs/hosts.yml
[ssh_connection]
host_key_checking = yes
ssh_args =
`,
		"continued": `[defaults]
remote_user = a;b
[ssh_connection]
ssh_common_args = -o ProxyJump=j1
  -o User=x
[privilege_escalation]
become = 1
`,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "ansible.cfg")
			require.NoError(t, os.WriteFile(cfg, []byte(text), 0o600))
			t.Setenv("HOME", filepath.Dir(cfg))
			c, err := ansiblecfg.Load(cfg)
			require.NoError(t, err)
			base, ssh := dump(t, cfg, filepath.Dir(cfg))

			got := map[string]string{}
			if c.Inventory != nil {
				got["DEFAULT_HOST_LIST"] = pyList(c.Inventory)
			}
			set := func(k, v string) {
				if v != "" {
					got[k] = v
				}
			}
			set("DEFAULT_REMOTE_USER", c.RemoteUser)
			if c.RemotePort != 0 {
				set("DEFAULT_REMOTE_PORT", strconv.Itoa(c.RemotePort))
			}
			set("DEFAULT_PRIVATE_KEY_FILE", c.PrivateKeyFile)
			if c.Timeout != 0 {
				set("DEFAULT_TIMEOUT", strconv.Itoa(c.Timeout))
			}
			set("DEFAULT_BECOME", pyBool(c.Become))
			set("DEFAULT_BECOME_METHOD", c.BecomeMethod)
			set("DEFAULT_BECOME_USER", c.BecomeUser)
			set("DEFAULT_BECOME_EXE", c.BecomeExe)
			set("DEFAULT_BECOME_FLAGS", c.BecomeFlags)
			want := map[string]string{}
			for k, v := range base {
				switch k {
				case "HOST_KEY_CHECKING", "DEFAULT_BECOME_ASK_PASS", "DEFAULT_ASK_PASS":
				default:
					want[k] = v
				}
			}
			assert.Equal(t, want, got, "base settings")
			assert.Equal(t, base["DEFAULT_BECOME_ASK_PASS"] == "True", c.BecomeAskPass)
			assert.Equal(t, base["DEFAULT_ASK_PASS"] == "True", c.AskPass)

			gotSSH := map[string]string{}
			if c.SSHArgsSet {
				gotSSH["ssh_args"] = c.SSHArgs
			}
			if c.SSHCommonArgs != "" {
				gotSSH["ssh_common_args"] = c.SSHCommonArgs
			}
			if c.SSHExtraArgs != "" {
				gotSSH["ssh_extra_args"] = c.SSHExtraArgs
			}
			if hkc := pyBool(c.HostKeyChecking); hkc != "" {
				gotSSH["host_key_checking"] = hkc
			}
			wantSSH := map[string]string{}
			for _, k := range []string{"ssh_args", "ssh_common_args", "ssh_extra_args", "host_key_checking"} {
				if v, ok := ssh[k]; ok {
					wantSSH[k] = v
				}
			}
			assert.Equal(t, wantSSH, gotSSH, "ssh connection options")
		})
	}
}

func TestLoadRefusesWhatConfigparserRefuses(t *testing.T) {
	for text, msg := range map[string]string{
		"[defaults]\nremote_user = a\nremote_user = b\n": ":3: remote_user is set twice in its section",
		"remote_user = a\n":               `:1: "remote_user = a" before any [section]`,
		"[defaults]\nremote_port = ssh\n": `[defaults] remote_port: "ssh" is not an integer`,
	} {
		cfg := filepath.Join(t.TempDir(), "ansible.cfg")
		require.NoError(t, os.WriteFile(cfg, []byte(text), 0o600))
		_, err := ansiblecfg.Load(cfg)
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), msg)
		assert.Contains(t, err.Error(), cfg)
	}
}

// Find looks where Ansible looks, in its order; `ansible --version`
// names the file Ansible uses.
func TestFindUsesAnsiblesSearchOrder(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	project := filepath.Join(root, "project")
	open := filepath.Join(root, "open")
	other := filepath.Join(root, "other")
	for _, d := range []string{home, project, open, other} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.Chmod(open, 0o777))
	for _, f := range []string{filepath.Join(home, ".ansible.cfg"), filepath.Join(project, "ansible.cfg"),
		filepath.Join(open, "ansible.cfg"), filepath.Join(other, "named.cfg")} {
		require.NoError(t, os.WriteFile(f, []byte("[defaults]\n"), 0o644))
	}
	version := regexp.MustCompile(`(?m)^\s*config file = (.*)$`)
	for name, tc := range map[string]struct {
		dir  string
		env  []string
		warn bool
	}{
		"env file":                  {dir: project, env: []string{"ANSIBLE_CONFIG=" + filepath.Join(other, "named.cfg")}},
		"env directory":             {dir: other, env: []string{"ANSIBLE_CONFIG=" + project}},
		"working directory":         {dir: project},
		"world-writable is skipped": {dir: open, warn: true},
		"home":                      {dir: other},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("HOME", home)
			os.Unsetenv("ANSIBLE_CONFIG")
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			t.Chdir(tc.dir)
			got, warning := ansiblecfg.Find()
			m := version.FindStringSubmatch(ansible(t, tc.dir, append([]string{"HOME=" + home}, tc.env...), "ansible", "--version"))
			require.NotNil(t, m)
			assert.Equal(t, m[1], got)
			if tc.warn {
				assert.Equal(t, "Ansible is being run in a world writable directory ("+open+"), ignoring it as an ansible.cfg source", warning)
			} else {
				assert.Empty(t, warning)
			}
		})
	}
}
