package inventory_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, text string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse(strings.NewReader(text), "hosts.ini")
	require.NoError(t, err)
	return inv
}

// write creates files under a fresh directory: name -> content; a name
// ending in "*" is made executable (without the "*").
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
	}
	return dir
}

func TestParseHostsGroupsAndVars(t *testing.T) {
	inv := parse(t, sample)
	all, err := inv.Match("all")
	require.NoError(t, err)
	assert.Equal(t, []string{"db-a", "db-b", "db-c", "jump", "lonely.example.com", "stage0", "stage3", "stage6",
		"web-extra", "web01.example.com", "web02.example.com", "web03.example.com", "web04.example.com", "web05.example.com"}, all)

	h := inv.Host("web01.example.com")
	require.NotNil(t, h)
	assert.Equal(t, "deploy", h.Vars["ansible_user"], "host vars beat group vars")
	assert.Equal(t, "production", h.Vars["env"], "child-of-all group vars beat [all:vars]")
	assert.Equal(t, "ntp.example.com", h.Vars["ntp"])

	h = inv.Host("web-extra")
	require.NotNil(t, h)
	assert.Equal(t, 2222, h.Vars["ansible_port"], "a port is a number, as in Ansible")
	assert.Equal(t, "edge node", h.Vars["role"], "quoted values keep their spaces")

	h = inv.Host("jump")
	assert.Equal(t, "10.0.0.9", h.Vars["ansible_host"])
	assert.Equal(t, "unknown", h.Vars["env"])
	assert.False(t, h.Local())

	assert.Nil(t, inv.Host("nowhere"))
	local := inv.Host("localhost")
	require.NotNil(t, local, "localhost is implicit")
	assert.True(t, local.Implicit)
	assert.True(t, local.Local())

	assert.Equal(t, []string{"all", "db", "empty", "prod", "staging", "ungrouped", "web"}, inv.Groups())
	prod := inv.Group("prod")
	require.NotNil(t, prod)
	assert.Equal(t, []string{"web", "db"}, prod.Children)
	assert.Equal(t, "production", prod.Vars["env"])
	assert.Nil(t, inv.Group("nothere"))
}

// The default inventory is the corpus case 34-default-inventory, which is
// compared with Ansible: localhost listed, so "all" and "*" give it.
func TestDefaultInventoryListsLocalhost(t *testing.T) {
	inv := inventory.Default()
	same, err := inventory.Load("testdata/ansible/34-default-inventory/hosts")
	require.NoError(t, err)
	for _, p := range []string{"*", "all", "localhost", "ungrouped", "127.0.0.1", "::1", "all:!localhost"} {
		got, err := inv.Match(p)
		require.NoError(t, err)
		want, err := same.Match(p)
		require.NoError(t, err)
		assert.Equal(t, want, got, p)
	}
	assert.Equal(t, same.Hosts(), inv.Hosts())
	assert.Equal(t, same.Host("localhost").Vars["ansible_connection"], inv.Host("localhost").Vars["ansible_connection"])
	for _, p := range []string{"*", "all", "localhost", "ungrouped"} {
		got, err := inv.Match(p)
		require.NoError(t, err)
		assert.Equal(t, []string{"localhost"}, got, p)
	}
	h := inv.Host("localhost")
	assert.False(t, h.Implicit)
	assert.True(t, h.Local())
	c, err := h.Conn()
	require.NoError(t, err)
	assert.Equal(t, "local", c.Connection)
}

func TestPatterns(t *testing.T) {
	inv := parse(t, sample)
	for pattern, want := range map[string]string{
		"web":                   "web-extra web01.example.com web02.example.com web03.example.com web04.example.com web05.example.com",
		"web*:&prod:!web03*":    "web-extra web01.example.com web02.example.com web04.example.com web05.example.com",
		"web:&staging":          "web05.example.com",
		"!web:db":               "db-a db-b db-c",
		"db,staging":            "db-a db-b db-c stage0 stage3 stage6 web03.example.com web05.example.com",
		"~db-[ab]":              "db-a db-b",
		"web0[!13].example.com": "web02.example.com web04.example.com web05.example.com",
		"localhost:jump":        "jump localhost",
		"nothere":               "",
		"*:!all":                "",
		// Subscripts pick from the inventory's order, as in Ansible.
		"web[0]":     "web01.example.com",
		"web[-1]":    "web-extra",
		"web[0:2]":   "web01.example.com web02.example.com web03.example.com",
		"web[4:]":    "web-extra web05.example.com",
		"staging[1]": "stage0",
		"db[9]":      "",
		"prod[5]":    "web-extra",
	} {
		got, err := inv.Match(pattern)
		require.NoError(t, err, pattern)
		assert.Equal(t, strings.Fields(want), got, pattern)
	}
	for _, bad := range []string{"~(", "!", "&", "~a(?=b)"} {
		_, err := inv.Match(bad)
		assert.ErrorIs(t, err, exe.ErrInvalid, bad)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	for text, want := range map[string]string{
		"a\n[web\nb\n":                       `hosts.ini:2: malformed section header "[web"`,
		"[web:stuff]\n":                      `hosts.ini:1: section [web:stuff] has unknown type "stuff"`,
		"[web:vars]\nnovalue\n":              `hosts.ini:2: expected key=value in [web:vars]`,
		"[web]\nweb[1:x]\n":                  `hosts.ini:2: host range [1:x] in "web[1:x]" must be numbers or single letters`,
		"[web]\nweb[01:5]\n":                 "begin and end of equal length",
		"[web]\nweb[c:a]\n":                  "must have begin <= end",
		"[web]\nh1 user\n":                   `hosts.ini:2: expected key=value host variable assignment, got "user"`,
		"[web]\nh1 a=\"unterminated\n":       "hosts.ini:2: error parsing host definition",
		"[a:children]\nb\n[b:children]\na\n": "hosts.ini:4: adding group \"a\" as a child of \"b\" creates a recursive dependency loop",
		"[a:children]\na\n":                  "hosts.ini:2: group \"a\" cannot be a child of itself",
		"[web]\nw[1:9999999]\n":              "gives more than 1048576 hosts",
		"[bad group]\n":                      `hosts.ini:1: invalid section entry "[bad group]"`,
		"[x:vars]\na=1\n":                    `hosts.ini:1: section [x:vars] is for group "x", which is not defined`,
		"[x:children]\nmissing\n":            `hosts.ini:2: section [x:children] includes undefined group "missing"`,
		"[web]\nh1 ansible_port=2\n[web:vars]\nansible_group_priority=high\n": "hosts.ini:4: ansible_group_priority of group \"web\": high is not a number",
	} {
		_, err := inventory.Parse(strings.NewReader(text), "hosts.ini")
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
}

func TestYAMLErrorsNameFileLineAndCause(t *testing.T) {
	for text, want := range map[string]string{
		// What Ansible's INI reading would say ("all:" is not a port)
		// is not the cause: the YAML is.
		"all:\n  hosts:\n    w1:\n      a: 1\n     b: 2\n": "hosts.yml: line 5: did not find expected key",
		"all:\n  hosts: [w1, w2]\n":                        `hosts.yml:2: invalid "hosts" entry for group "all": it must be a mapping, found a list`,
		"all:\n  hosts:\n    w1: just-a-string\n":          `hosts.yml:3: the variables of host "w1" must be a mapping`,
		"all:\n  hosts:\n    1.5:\n":                       "hosts.yml:3: host pattern 1.5 must be a string",
		"- a\n- b\n":                                       "hosts.yml:1: a YAML inventory must be a mapping of groups, got a list",
		"a: 1\n---\nb: 2\n":                                "hosts.yml:2: expected a single document",
		"all:\n  vars:\n    x: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n  hosts:\n    w1:\n    w2: !bogus x\n": "hosts.yml:8: could not determine a constructor for the tag !bogus",
		"plugin: constructed\n": "hosts.yml:1: the file configures an inventory plugin (constructed), which exed cannot run; export its hosts with ansible-inventory -i hosts.yml --list --yaml --output hosts.yml",
	} {
		_, err := inventory.Parse(strings.NewReader(text), "hosts.yml")
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
	// Without an extension a YAML-looking text gets the YAML error too.
	_, err := inventory.Parse(strings.NewReader("all:\n  hosts:\n    w1:\n     - x\n    y\n"), "hosts")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hosts: line 6: could not find expected ':'")
	assert.NotContains(t, err.Error(), "port")
}

func TestVaultedValuesAreKeptAndRefusedForConnections(t *testing.T) {
	inv, err := inventory.Parse(strings.NewReader("all:\n  hosts:\n    w1:\n      ansible_become_password: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6162\n      ansible_become: true\n"), "hosts.yml")
	require.NoError(t, err)
	h := inv.Host("w1")
	v, ok := h.Vars["ansible_become_password"].(inventory.Vaulted)
	require.True(t, ok)
	assert.Contains(t, v.Ciphertext, "$ANSIBLE_VAULT;1.1;AES256")
	_, err = h.Conn()
	assert.ErrorContains(t, err, "ansible_become_password is encrypted with ansible-vault")
}

func TestLoadErrors(t *testing.T) {
	dir := write(t, map[string]string{
		"empty/only.ini":             "[web]\nw1\n",
		"empty/notes.md":             "x",
		"fails.sh*":                  "#!/bin/sh\necho 'no route to cmdb' >&2\nexit 2\n",
		"notjson.sh*":                "#!/bin/sh\necho 'hosts: [a]'\n",
		"slow.sh*":                   "#!/bin/sh\necho started >&2\nexec sleep 30\n",
		"dir/good.yml":               "all:\n  hosts:\n    g1:\n",
		"dir/README":                 "This directory holds the inventory.\n",
		"vault/group_vars/all.yml":   "$ANSIBLE_VAULT;1.1;AES256\n6162\n",
		"vault/hosts":                "[web]\nw1\n",
		"badvars/group_vars/web.yml": "- a list\n",
		"badvars/hosts":              "[web]\nw1\n",
		"plugin.yaml":                "plugin: community.general.proxmox\n",
		"hosts.toml":                 "[web.hosts]\nw1 = {}\n",
	})
	p := func(s string) string { return filepath.Join(dir, s) }
	for _, c := range []struct {
		sources []string
		want    string
	}{
		{[]string{p("missing")}, p("missing") + ": no such file or directory"},
		{[]string{p("empty")}, p("empty") + ": no inventory found: every file in the directory is one Ansible ignores"},
		{[]string{p("fails.sh")}, "inventory script " + p("fails.sh") + " --list exited with status 2: no route to cmdb"},
		{[]string{p("notjson.sh")}, p("notjson.sh") + " --list: invalid JSON"},
		{[]string{p("dir")}, p("dir/README") + ":1: expected key=value host variable assignment, got \"directory\" (every file in an inventory directory is read"},
		{[]string{p("vault/hosts")}, p("vault/group_vars/all.yml") + ": the file is encrypted with ansible-vault"},
		{[]string{p("badvars/hosts")}, p("badvars/group_vars/web.yml") + ": a vars file must be a mapping of variable names to values, got a list"},
		{[]string{p("plugin.yaml")}, "which exed cannot run"},
		{[]string{p("hosts.toml")}, "TOML inventories are not supported"},
		{nil, "no inventory source given"},
	} {
		_, err := inventory.Load(c.sources...)
		require.Error(t, err, c.sources)
		assert.Contains(t, err.Error(), c.want, c.sources)
	}

	start := time.Now()
	_, err := inventory.Options{ScriptTimeout: 200 * time.Millisecond}.Load(p("slow.sh"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "slow.sh --list did not finish within 200ms: started")
	assert.Less(t, time.Since(start), 20*time.Second, "the script and its children are killed at the timeout")

	emptyWarn, err := inventory.Load(p("empty/only.ini"))
	require.NoError(t, err, "an .ini file given directly is read")
	assert.Equal(t, []string{"w1"}, emptyWarn.Hosts())
}

func TestDirectoryWarnsAboutIgnoredINIFiles(t *testing.T) {
	dir := write(t, map[string]string{"inv/hosts.ini": "[web]\nw1\n", "inv/main.yml": "all:\n  hosts:\n    m1:\n"})
	inv, err := inventory.Load(filepath.Join(dir, "inv"))
	require.NoError(t, err)
	assert.Equal(t, []string{"m1"}, inv.Hosts())
	assert.Contains(t, inv.Warnings(), filepath.Join(dir, "inv/hosts.ini")+": not read: Ansible ignores files ending in .ini inside an inventory directory")
}

func TestSeveralSourcesAndParseSources(t *testing.T) {
	dir := write(t, map[string]string{"a.ini": "[web]\nw1\n", "b/hosts.yml": "all:\n  children:\n    web:\n      hosts:\n        w2:\n"})
	list := filepath.Join(dir, "a.ini") + ", " + filepath.Join(dir, "b") + " ,"
	assert.Equal(t, []string{filepath.Join(dir, "a.ini"), filepath.Join(dir, "b")}, inventory.ParseSources(list))
	inv, err := inventory.Load(inventory.ParseSources(list)...)
	require.NoError(t, err)
	got, err := inv.Match("web")
	require.NoError(t, err)
	assert.Equal(t, []string{"w1", "w2"}, got)
}

func TestDuplicateHostWarnings(t *testing.T) {
	inv := parse(t, "[a]\ndb1:2222 ansible_host=10.0.0.1\n[b]\ndb1:2200 ansible_host=10.0.0.2\n[c]\ndb1 ansible_host=10.0.0.2\n")
	h := inv.Host("db1")
	assert.Equal(t, 2222, h.Vars["ansible_port"], "Ansible keeps the first port")
	assert.Equal(t, "10.0.0.2", h.Vars["ansible_host"], "and the last variable")
	assert.Equal(t, []string{
		`hosts.ini:4: host "db1" is given port 2200, which Ansible ignores because the host is defined before (at hosts.ini:2); its port stays 2222`,
		`host "db1" is defined at hosts.ini:2 with ansible_host=10.0.0.1 and at hosts.ini:4 with ansible_host=10.0.0.2; as in Ansible the later one (10.0.0.2) is used`,
	}, inv.Warnings(), "the same value again (line 6) is no news")
}

// connInventory has hosts with every spelling of the connection variables
// and values Conn refuses.
const connInventory = `
[web]
legacy ansible_ssh_host=10.0.0.2 ansible_host=10.0.0.1 ansible_ssh_port=2222 ansible_port=22 ansible_ssh_user=deploy ansible_user=root
plain ansible_host=10.0.0.3 ansible_port="2200" ansible_user=123 ansible_private_key_file=~/.ssh/web
b1 ansible_user=root ansible_become=yes ansible_become_user=app ansible_become_pass=s1 ansible_become_password=s0
b2 ansible_user=app ansible_become=True ansible_become_user=app
b3 ansible_become=on ansible_become_method=su ansible_su_user=x ansible_su_pass=p
b4 ansible_become=1 ansible_become_method=doas
127.0.0.1:2022
bad-port ansible_port=70000
bad-port2 ansible_port=ssh
bad-bool ansible_become=maybe
templated ansible_host="{{ inventory_hostname }}.example.com"
empty ansible_host=""
nullhost
[web:vars]
ansible_shell_type=sh
`

func TestConn(t *testing.T) {
	inv := parse(t, connInventory)
	home, err := os.UserHomeDir()
	require.NoError(t, err)
	conn := func(name string) inventory.Conn {
		t.Helper()
		c, err := inv.Host(name).Conn()
		require.NoError(t, err, name)
		return c
	}
	c := conn("legacy")
	assert.Equal(t, "10.0.0.2", c.Address)
	assert.Equal(t, 2222, c.Port)
	assert.Equal(t, "deploy", c.User)
	assert.Equal(t, "ssh", c.Connection)
	assert.Equal(t, "sh", c.ShellType)
	c = conn("plain")
	assert.Equal(t, 2200, c.Port)
	assert.Equal(t, "123", c.User, "a number is a user name as Python writes it")
	assert.Equal(t, filepath.Join(home, ".ssh/web"), c.PrivateKeyFile)
	c = conn("b1")
	assert.True(t, c.Become)
	assert.True(t, c.Escalates())
	assert.Equal(t, "sudo", c.BecomeMethod)
	assert.Equal(t, "app", c.BecomeUser)
	assert.Equal(t, "sudo", c.BecomeExe)
	assert.Equal(t, "-H -S -n", c.BecomeFlags)
	assert.Equal(t, "s1", c.BecomePassword, "ansible_become_pass comes later in sudo's list")
	c = conn("b2")
	assert.True(t, c.Become)
	assert.False(t, c.Escalates(), "Ansible does not escalate to the user it logs in as")
	c = conn("b3")
	assert.Equal(t, "su", c.BecomeMethod)
	assert.Equal(t, "x", c.BecomeUser)
	assert.Equal(t, "su", c.BecomeExe)
	assert.Equal(t, "", c.BecomeFlags)
	assert.Equal(t, "p", c.BecomePassword)
	c = conn("b4")
	assert.Equal(t, "doas", c.BecomeMethod)
	assert.Equal(t, "", c.BecomeExe, "no defaults for methods exed does not know")
	c = conn("127.0.0.1")
	assert.Equal(t, "ssh", c.Connection, "a listed localhost is reached over SSH")
	assert.Equal(t, 2022, c.Port)
	c = conn("localhost")
	assert.Equal(t, "ssh", c.Connection, "localhost stands for the listed 127.0.0.1")
	assert.Equal(t, "127.0.0.1", c.Address)
	c = conn("nullhost")
	assert.Equal(t, "nullhost", c.Address)
	assert.Equal(t, 0, c.Port, "no port: ssh's own default")

	for name, want := range map[string]string{
		"bad-port":  "ansible_port 70000 is not a port number (1-65535)",
		"bad-port2": `ansible_port "ssh" is not a port number`,
		"bad-bool":  "ansible_become maybe is not a valid boolean (use true or false)",
		"templated": "ansible_host is a Jinja2 template ({{ inventory_hostname }}.example.com), which exed does not render",
		"empty":     "the host's address (ansible_host or ansible_ssh_host) is empty",
	} {
		_, err := inv.Host(name).Conn()
		assert.EqualError(t, err, want, name)
	}

	implicit := parse(t, "[web]\nw1\n").Host("::1")
	require.NotNil(t, implicit)
	assert.True(t, implicit.Implicit)
	c, err = implicit.Conn()
	require.NoError(t, err)
	assert.Equal(t, "local", c.Connection)
}

// TestConnOfManyVariables: Conn reads the connection variables of a host
// with more variables than there are connection variables by looking each
// up, not by walking them; both must read the same.
func TestConnOfManyVariables(t *testing.T) {
	inv := parse(t, connInventory)
	hosts := append(inv.Hosts(), "localhost", "::1")
	for _, name := range hosts {
		h := inv.Host(name)
		require.NotNil(t, h, name)
		many := &inventory.Host{Name: h.Name, Vars: maps.Clone(h.Vars), Implicit: h.Implicit}
		for i := range 40 {
			many.Vars[fmt.Sprintf("app_setting_%02d", i)] = i
		}
		want, wantErr := h.Conn()
		got, err := many.Conn()
		assert.Equal(t, want, got, name)
		assert.Equal(t, wantErr, err, name)
	}
}

func TestUnsafeValuesAreTakenAsWritten(t *testing.T) {
	inv, err := inventory.Parse(strings.NewReader("all:\n  hosts:\n    w1:\n      ansible_user: !unsafe '{{odd}}'\n"), "hosts.yml")
	require.NoError(t, err)
	c, err := inv.Host("w1").Conn()
	require.NoError(t, err)
	assert.Equal(t, "{{odd}}", c.User)
}

func TestStatic(t *testing.T) {
	inv, err := inventory.Static("web[1:2]", "db1:2222", "[2001:db8::1]:2200", "fe80::1%eth0")
	require.NoError(t, err)
	all, err := inv.Match("all")
	require.NoError(t, err)
	assert.Equal(t, []string{"2001:db8::1", "db1", "fe80::1%eth0", "web1", "web2"}, all)
	assert.Equal(t, 2200, inv.Host("2001:db8::1").Vars["ansible_port"])
	got, err := inv.Match("fe80::1%eth0")
	require.NoError(t, err)
	assert.Equal(t, []string{"fe80::1%eth0"}, got, "an IPv6 address is one pattern")
	_, err = inventory.Static("w[1:x]")
	assert.ErrorContains(t, err, "must be numbers or single letters")
}

func FuzzMatch(f *testing.F) {
	inv, err := inventory.Parse(strings.NewReader(sample), "sample")
	if err != nil {
		f.Fatal(err)
	}
	all, _ := inv.Match("all")
	known := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, h := range all {
		known[h] = true
	}
	for _, seed := range []string{"all", "web*:&prod:!web03*", "~db-[ab]", "a,b,,c", "[", "[!]", "[]]", "~", "&", "!!x",
		"web[0]", "web[-1]", "web[1:]", "x:y:z", "*?*[a-", "::1", "fe80::1%eth0", "*[0:99999999999999999999]", "[z-a]"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		got, err := inv.Match(pattern)
		if err != nil {
			if !strings.Contains(err.Error(), "pattern") {
				t.Fatalf("%q: error does not say what is wrong: %v", pattern, err)
			}
			return
		}
		for i, h := range got {
			if !known[h] {
				t.Fatalf("%q selected %q, which is not a host", pattern, h)
			}
			if i > 0 && got[i-1] >= h {
				t.Fatalf("%q: result not sorted and unique: %v", pattern, got)
			}
		}
	})
}

func TestRangeWithPort(t *testing.T) {
	inv := parse(t, "[web]\nweb[01:02]:2222\n")
	got, err := inv.Match("web")
	require.NoError(t, err)
	assert.Equal(t, []string{"web01", "web02"}, got)
	assert.Equal(t, 2222, inv.Host("web02").Vars["ansible_port"])
}

// TestReadmeWorkedExample checks what the README says of its example
// (testdata/ansible/33-readme-example, which the corpus also compares
// with Ansible).
func TestReadmeWorkedExample(t *testing.T) {
	inv, err := inventory.Load("testdata/ansible/33-readme-example/inventories/production")
	require.NoError(t, err)
	for pattern, want := range map[string]string{
		"prod:!db": "web01.example.com web02.example.com web03.example.com web04.example.com",
		"web[0:1]": "web01.example.com web02.example.com",
		"cloud":    "vm-7",
	} {
		got, err := inv.Match(pattern)
		require.NoError(t, err)
		assert.Equal(t, strings.Fields(want), got, pattern)
	}
	c, err := inv.Host("db1").Conn()
	require.NoError(t, err)
	assert.Equal(t, inventory.Conn{Connection: "ssh", Address: "10.0.0.5", Port: 2201, User: "postgres",
		BecomeMethod: "sudo", BecomeUser: "root", BecomeExe: "sudo", BecomeFlags: "-H -S -n"}, c)
	c, err = inv.Host("127.0.0.1").Conn()
	require.NoError(t, err)
	assert.Equal(t, "ssh", c.Connection)
	assert.Equal(t, 2222, c.Port)
	assert.Equal(t, "vagrant", c.User)
	assert.Nil(t, inv.Group("old"), "old-hosts.ini is not read")
}

// FuzzParse feeds arbitrary text to the INI and YAML readers: they answer
// with an inventory or an error naming the file, never a panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{sample, "all:\n  hosts:\n    w[1:3]:\n      a: yes\n", "[a:children]\nb\n[b]\nh\n",
		"x: &a {<<: *a}\n", "h a=\"[1, {'b': (2,)}]\"\n", "all:\n  children:\n    g: {hosts: {'[::1]:22': ~}}\n", "w[a:Z:0]\n"} {
		f.Add(seed, "hosts")
	}
	f.Fuzz(func(t *testing.T, text, name string) {
		name = "f" + strings.Map(func(r rune) rune {
			if r == '/' || r == 0 {
				return '_'
			}
			return r
		}, name)
		inv, err := inventory.Parse(strings.NewReader(text), name)
		if err != nil {
			if !strings.HasPrefix(err.Error(), name) {
				t.Fatalf("error does not name the file %q: %v", name, err)
			}
			return
		}
		for _, h := range inv.Hosts() {
			if inv.Host(h) == nil {
				t.Fatalf("listed host %q has no Host", h)
			}
		}
	})
}
