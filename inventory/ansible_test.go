package inventory_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The comparison corpus: each directory of testdata/ansible is one case.
//
//	sources      inventory sources, one per line, relative to the case
//	patterns     host patterns, one per line (optional)
//	extra-hosts  names outside "all" to check too, e.g. the implicit
//	             localhost (optional)
//	error        when present, loading must fail, for exed with an error
//	             holding each of its lines, and for Ansible too
//	warnings     lines each of which some exed warning must hold (optional)
//	playbook-dir the directory, relative to the case, ansible runs in, so
//	             that its group_vars/ and host_vars/ apply as the playbook
//	             directory's; exed gets it as Options.PlaybookDir
//	             (optional; else a scratch directory with none)
//
// For each case the test asks the real Ansible and compares:
//   - groups, their hosts (in order) and children, and every host's
//     variables: ansible-inventory --list (and --host for extra hosts);
//   - the hosts each pattern selects: ansible-playbook --list-hosts with a
//     play per pattern (ansible PATTERN --list-hosts for each pattern when
//     a subscript out of range fails the playbook);
//   - every host's connection (address, port, user, key, local or ssh,
//     become method and user): what ansible -m raw hands to ssh, recorded
//     by a stand-in ssh executable (see recorder below), or runs locally.

// ansibleEnv is the environment for ansible commands: none of the user's
// ANSIBLE_* settings, an empty configuration, and state in dir.
func ansibleEnv(dir string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANSIBLE_") {
			env = append(env, kv)
		}
	}
	return append(append(env,
		"ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"),
		"ANSIBLE_HOME="+filepath.Join(dir, "home"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(dir, "cp"),
		"ANSIBLE_LOCALHOST_WARNING=False",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_DEPRECATION_WARNINGS=False",
		"ANSIBLE_SYSTEM_WARNINGS=False",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		"ANSIBLE_FORKS=10",
	), extra...)
}

type ansibleRunner struct {
	dir string // scratch directory
	cwd string // working directory; "": dir
}

func newAnsibleRunner(t *testing.T) *ansibleRunner {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ansible.cfg"), nil, 0o600))
	return &ansibleRunner{dir: dir}
}

// run runs an ansible command; it returns stdout and any failure with
// stderr.
func (r *ansibleRunner) run(extraEnv []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = r.dir // no group_vars of a playbook directory
	if r.cwd != "" {
		cmd.Dir = r.cwd
	}
	cmd.Env = ansibleEnv(r.dir, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

type corpusCase struct {
	name, dir  string
	sources    []string // relative to the package directory
	abs        []string // absolute, for ansible
	patterns   []string
	extraHosts []string
	wantErr    []string
	warnings   []string
	// playbookDir is absolute; "" for none.
	playbookDir string
}

func readLines(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func loadCorpus(t *testing.T) []corpusCase {
	dirs, err := filepath.Glob("testdata/ansible/*")
	require.NoError(t, err)
	var cases []corpusCase
	for _, d := range dirs {
		c := corpusCase{name: filepath.Base(d), dir: d}
		for _, s := range readLines(t, filepath.Join(d, "sources")) {
			rel := filepath.Join(d, s)
			abs, err := filepath.Abs(rel)
			require.NoError(t, err)
			c.sources, c.abs = append(c.sources, rel), append(c.abs, abs)
		}
		require.NotEmpty(t, c.sources, "%s: no sources", d)
		c.patterns = readLines(t, filepath.Join(d, "patterns"))
		c.extraHosts = readLines(t, filepath.Join(d, "extra-hosts"))
		c.wantErr = readLines(t, filepath.Join(d, "error"))
		c.warnings = readLines(t, filepath.Join(d, "warnings"))
		if pd := readLines(t, filepath.Join(d, "playbook-dir")); len(pd) > 0 {
			abs, err := filepath.Abs(filepath.Join(d, pd[0]))
			require.NoError(t, err)
			c.playbookDir = abs
		}
		cases = append(cases, c)
	}
	require.GreaterOrEqual(t, len(cases), 25, "the corpus has at least 25 cases")
	return cases
}

func TestCorpusMatchesAnsible(t *testing.T) {
	testenv.NeedBinary(t, "ansible")
	testenv.NeedBinary(t, "ansible-inventory")
	testenv.NeedBinary(t, "ansible-playbook")
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newAnsibleRunner(t)
			r.cwd = c.playbookDir
			inv, err := inventory.Options{PlaybookDir: c.playbookDir}.Load(c.sources...)
			if c.wantErr != nil {
				require.Error(t, err, "exed loads what should fail")
				for _, w := range c.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				args := []string{"--list"}
				for _, s := range c.abs {
					args = append(args, "-i", s)
				}
				_, aerr := r.run([]string{"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=True"}, "ansible-inventory", args...)
				require.Error(t, aerr, "ansible loads what exed refuses")
				t.Logf("exed: %v", err)
				return
			}
			require.NoError(t, err)
			// Warnings name files by absolute path (a relative source is
			// read from the working directory); the corpus writes them
			// relative to the package directory.
			cwd, err := os.Getwd()
			require.NoError(t, err)
			var got []string
			for _, w := range inv.Warnings() {
				got = append(got, strings.ReplaceAll(w, cwd+string(filepath.Separator), ""))
			}
			for _, w := range c.warnings {
				assert.True(t, containsAny(got, w), "no warning holds %q; warnings: %q", w, got)
			}
			// The ansible commands run at once; the comparisons follow.
			var list, raw ansibleOutput
			var hostOut []ansibleOutput
			var patterns [][]string
			var patternsErr error
			var wg sync.WaitGroup
			wg.Add(3)
			go func() { defer wg.Done(); list = runList(r, c); hostOut = runExtraHosts(r, c) }()
			go func() { defer wg.Done(); patterns, patternsErr = runPatterns(r, c) }()
			go func() { defer wg.Done(); raw = runRaw(r, c) }()
			wg.Wait()
			compareInventory(t, c, inv, list, hostOut)
			if assert.NoError(t, patternsErr) {
				comparePatterns(t, c, inv, patterns)
			}
			compareConnections(t, r, c, inv, raw)
		})
	}
}

func containsAny(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func iArgs(c corpusCase) []string {
	var args []string
	for _, s := range c.abs {
		args = append(args, "-i", s)
	}
	return args
}

// normalize gives a value the form JSON decoding gives, so that exed's
// and Ansible's variables compare.
func normalize(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// ansibleOutput is a command's stdout and failure.
type ansibleOutput struct {
	out []byte
	err error
}

func runList(r *ansibleRunner, c corpusCase) ansibleOutput {
	out, err := r.run(nil, "ansible-inventory", append(iArgs(c), "--list")...)
	return ansibleOutput{out, err}
}

func runExtraHosts(r *ansibleRunner, c corpusCase) []ansibleOutput {
	var res []ansibleOutput
	for _, h := range c.extraHosts {
		out, err := r.run(nil, "ansible-inventory", append(iArgs(c), "--host", h)...)
		res = append(res, ansibleOutput{out, err})
	}
	return res
}

func compareInventory(t *testing.T, c corpusCase, inv *inventory.Inventory, got ansibleOutput, hostOut []ansibleOutput) {
	require.NoError(t, got.err)
	var list map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(got.out, &list))
	var meta struct {
		Hostvars map[string]map[string]any `json:"hostvars"`
	}
	require.NoError(t, json.Unmarshal(list["_meta"], &meta))
	delete(list, "_meta")

	// Groups: ansible-inventory shows the groups that have hosts or
	// children, with their own hosts and children in order.
	hosts := map[string]bool{}
	for name, raw := range list {
		var g struct {
			Hosts    []string `json:"hosts"`
			Children []string `json:"children"`
		}
		require.NoError(t, json.Unmarshal(raw, &g))
		ours := inv.Group(name)
		if !assert.NotNil(t, ours, "group %s", name) {
			continue
		}
		if name != "all" {
			assert.Equal(t, g.Hosts, ours.Hosts, "hosts of group %s", name)
		}
		assert.Equal(t, g.Children, ours.Children, "children of group %s", name)
		for _, h := range g.Hosts {
			hosts[h] = true
		}
	}
	for _, name := range inv.Groups() {
		g := inv.Group(name)
		if _, shown := list[name]; !shown {
			assert.True(t, len(g.Hosts) == 0 && len(g.Children) == 0, "group %s is not in ansible-inventory --list", name)
		}
	}
	want := sortedKeys(hosts)
	all, err := inv.Match("all")
	require.NoError(t, err)
	assert.Equal(t, want, all, "host list")
	assert.ElementsMatch(t, want, inv.Hosts(), "Hosts()")

	for _, h := range want {
		ours := inv.Host(h)
		if !assert.NotNil(t, ours, h) {
			continue
		}
		theirs := meta.Hostvars[h]
		if theirs == nil {
			theirs = map[string]any{}
		}
		assert.Equal(t, normalize(t, theirs), normalize(t, ours.Vars), "variables of %s", h)
	}
	for i, h := range c.extraHosts {
		if !assert.NoError(t, hostOut[i].err) {
			continue
		}
		var theirs map[string]any
		require.NoError(t, json.Unmarshal(hostOut[i].out, &theirs))
		// The controller's Python is no business of exed's.
		delete(theirs, "ansible_python_interpreter")
		ours := inv.Host(h)
		if assert.NotNil(t, ours, h) {
			assert.Equal(t, normalize(t, theirs), normalize(t, ours.Vars), "variables of %s", h)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// playHostsRE finds a play's host count in ansible-playbook --list-hosts.
var playHostsRE = regexp.MustCompile(`^\s*hosts \((\d+)\):$`)

func runPatterns(r *ansibleRunner, c corpusCase) ([][]string, error) {
	if len(c.patterns) == 0 {
		return nil, nil
	}
	// One playbook answers for every pattern, except those naming
	// localhost: the first localhost name a process uses names the implicit
	// localhost for the rest of the process, so each gets its own.
	var batch, alone []int
	for i, p := range c.patterns {
		if strings.Contains(p, "localhost") || strings.Contains(p, "127.0.0.1") || strings.Contains(p, "::1") {
			alone = append(alone, i)
		} else {
			batch = append(batch, i)
		}
	}
	theirs := make([][]string, len(c.patterns))
	for len(batch) > 0 {
		res, err := playbookListHosts(r, c, batch)
		if err == nil {
			for k, i := range batch {
				theirs[i] = res[k]
			}
			break
		}
		// A subscript out of range fails the whole playbook (ad hoc
		// ansible selects no host instead): ask ad hoc for the patterns
		// holding that term, and the playbook for the others.
		m := subscriptErrRE.FindStringSubmatch(err.Error())
		if m == nil {
			return nil, err
		}
		var rest []int
		for _, i := range batch {
			if strings.Contains(c.patterns[i], m[1]) {
				alone = append(alone, i)
			} else {
				rest = append(rest, i)
			}
		}
		if len(rest) == len(batch) {
			return nil, err
		}
		batch = rest
	}
	errs := make([]error, len(c.patterns))
	var wg sync.WaitGroup
	for _, i := range alone {
		p := c.patterns[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			theirs[i], errs[i] = adhocListHosts(r, c, p)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return theirs, nil
}

func comparePatterns(t *testing.T, c corpusCase, inv *inventory.Inventory, theirs [][]string) {
	for i, p := range c.patterns {
		ours, err := inv.Match(p)
		if assert.NoError(t, err, p) {
			assert.Equal(t, theirs[i], ours, "pattern %q", p)
		}
	}
}

var subscriptErrRE = regexp.MustCompile(`No hosts matched the subscripted pattern '([^']+)'`)

func playbookListHosts(r *ansibleRunner, c corpusCase, which []int) ([][]string, error) {
	if len(which) == 0 {
		return nil, nil
	}
	var pb strings.Builder
	for _, i := range which {
		q, _ := json.Marshal(c.patterns[i])
		fmt.Fprintf(&pb, "- hosts: %s\n  gather_facts: false\n  tasks: []\n", q)
	}
	path := filepath.Join(r.dir, "patterns.yml")
	if err := os.WriteFile(path, []byte(pb.String()), 0o600); err != nil {
		return nil, err
	}
	out, err := r.run(nil, "ansible-playbook", append(iArgs(c), "--list-hosts", path)...)
	if err != nil {
		return nil, err
	}
	var res [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := playHostsRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		hosts := []string{}
		for i := 0; i < n && sc.Scan(); i++ {
			hosts = append(hosts, strings.TrimSpace(sc.Text()))
		}
		sort.Strings(hosts)
		res = append(res, hosts)
	}
	if len(res) != len(which) {
		return nil, fmt.Errorf("ansible-playbook listed %d plays for %d patterns:\n%s", len(res), len(which), out)
	}
	return res, nil
}

func adhocListHosts(r *ansibleRunner, c corpusCase, pattern string) ([]string, error) {
	out, err := r.run(nil, "ansible", append(iArgs(c), "--list-hosts", "--", pattern)...)
	if err != nil {
		return nil, err
	}
	hosts := []string{}
	listing := false
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "hosts (") {
			listing = true
			continue
		}
		if listing && line != "" {
			hosts = append(hosts, line)
		}
	}
	sort.Strings(hosts)
	return hosts, nil
}

// recorder stands in for the ssh executable in Ansible's ssh connection
// plugin: it writes the arguments Ansible gives ssh (options, address,
// remote command) to a file and fails as an unreachable host does. What is
// under test is exed's reading of the inventory; Ansible's own connection
// plugin decides these arguments.
const recorder = `#!/bin/sh
printf '%s\0' "$@" > "$EXED_RECORD_DIR/$$"
exit 255
`

// sshCall is what Ansible asked ssh to do for one host.
type sshCall struct {
	address, port, user, key string
	becomeExe, becomeUser    string
}

var echoHostRE = regexp.MustCompile(`echo EXEDHOST=([^\s'"]+)`)

// rawPattern is what the connection check runs on.
func rawPattern(c corpusCase) string {
	return strings.Join(append([]string{"all"}, c.extraHosts...), ",")
}

func runRaw(r *ansibleRunner, c corpusCase) ansibleOutput {
	recDir := filepath.Join(r.dir, "records")
	rec := filepath.Join(r.dir, "ssh-recorder")
	if err := os.Mkdir(recDir, 0o700); err != nil {
		return ansibleOutput{nil, err}
	}
	if err := os.WriteFile(rec, []byte(recorder), 0o700); err != nil {
		return ansibleOutput{nil, err}
	}
	out, err := r.run([]string{
		"ANSIBLE_SSH_EXECUTABLE=" + rec, "EXED_RECORD_DIR=" + recDir,
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=True", "ANSIBLE_STDOUT_CALLBACK=json",
	}, "ansible", append(iArgs(c), rawPattern(c), "-m", "raw", "-a", "echo EXEDHOST={{ inventory_hostname }}",
		// Extra variables beat the inventory's: never the real ssh, which
		// would go to the network.
		"-e", "ansible_ssh_executable="+rec)...)
	return ansibleOutput{out, err}
}

func compareConnections(t *testing.T, r *ansibleRunner, c corpusCase, inv *inventory.Inventory, raw ansibleOutput) {
	recDir := filepath.Join(r.dir, "records")
	out, err := raw.out, raw.err
	// Every ssh host is unreachable, so ansible exits non-zero; its JSON
	// report is what counts.
	var report struct {
		Plays []struct {
			Tasks []struct {
				Hosts map[string]struct {
					Stdout      string `json:"stdout"`
					Unreachable bool   `json:"unreachable"`
					Rc          *int   `json:"rc"`
				} `json:"hosts"`
			} `json:"tasks"`
		} `json:"plays"`
	}
	if jerr := json.Unmarshal(out, &report); jerr != nil || len(report.Plays) == 0 || len(report.Plays[0].Tasks) == 0 {
		t.Fatalf("no report from ansible -m raw: %v %v\n%s", jerr, err, out)
	}
	calls := map[string]sshCall{}
	files, err := os.ReadDir(recDir)
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(recDir, f.Name()))
		require.NoError(t, err)
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		name, call := parseSSHArgs(t, args)
		calls[name] = call
	}
	results := report.Plays[0].Tasks[0].Hosts
	names, err := inv.Match(rawPattern(c))
	require.NoError(t, err)
	require.Len(t, results, len(names), "hosts ansible ran on")
	for _, name := range names {
		h := inv.Host(name)
		if !assert.NotNil(t, h, name) {
			continue
		}
		conn, err := h.Conn()
		if !assert.NoError(t, err, name) {
			continue
		}
		res := results[name]
		if call, viaSSH := calls[name]; viaSSH {
			assert.Equal(t, "ssh", conn.Connection, "%s: ansible connects over ssh", name)
			assert.Equal(t, call.address, conn.Address, "%s: address", name)
			port := ""
			if conn.Port != 0 {
				port = strconv.Itoa(conn.Port)
			}
			assert.Equal(t, call.port, port, "%s: port", name)
			assert.Equal(t, call.user, conn.User, "%s: user", name)
			assert.Equal(t, call.key, conn.PrivateKeyFile, "%s: private key", name)
			assert.Equal(t, call.becomeExe != "", conn.Escalates(), "%s: privilege escalation", name)
			if call.becomeExe != "" {
				assert.Equal(t, call.becomeExe, conn.BecomeExe, "%s: become exe", name)
				assert.Equal(t, call.becomeUser, conn.BecomeUser, "%s: become user", name)
			}
			continue
		}
		if assert.True(t, res.Rc != nil && *res.Rc == 0, "%s: ansible neither ran ssh nor ran locally: %+v", name, res) {
			assert.Equal(t, "EXEDHOST="+name, strings.TrimSpace(res.Stdout))
			assert.Equal(t, "local", conn.Connection, "%s: ansible runs it locally", name)
		}
	}
}

// parseSSHArgs reads the host name and connection from ssh's arguments:
// options, then the address, then the remote command.
func parseSSHArgs(t *testing.T, args []string) (string, sshCall) {
	require.GreaterOrEqual(t, len(args), 2, "ssh arguments %q", args)
	var c sshCall
	cmd := args[len(args)-1]
	c.address = args[len(args)-2]
	for i := 0; i+1 < len(args)-2; i++ {
		if args[i] != "-o" {
			continue
		}
		k, v, _ := strings.Cut(args[i+1], "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "Port":
			c.port = v
		case "User":
			c.user = v
		case "IdentityFile":
			c.key = v
		}
	}
	m := echoHostRE.FindStringSubmatch(cmd)
	require.NotNil(t, m, "no host name in remote command %q", cmd)
	if f := strings.Fields(cmd); len(f) > 0 && f[0] != "echo" && !strings.HasPrefix(f[0], "/bin/sh") {
		// sudo [flags] -u USER CMD, or su [flags] USER -c CMD.
		c.becomeExe = f[0]
		for i, w := range f {
			if w == "-u" && i+1 < len(f) && c.becomeUser == "" {
				c.becomeUser = f[i+1]
			}
			if w == "-c" && i > 0 && c.becomeUser == "" {
				c.becomeUser = f[i-1]
			}
		}
	}
	return m[1], c
}
