package inventory_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Relative sources are read from the working directory, as ansible -i
// reads them, with $VAR expanded; a script is run by that path, never
// looked up in $PATH, even when a program of the same name is there.
func TestRelativeSourcesAsAnsible(t *testing.T) {
	testenv.NeedBinary(t, "ansible-inventory")
	project := write(t, map[string]string{
		"cmdb*":                  "#!/bin/sh\necho '{\"web\": {\"hosts\": [\"from-cmdb\"]}, \"_meta\": {\"hostvars\": {}}}'\n",
		"meta.py*":               "#!/bin/sh\necho '{\"db\": [\"from-meta\"], \"_meta\": {\"hostvars\": {}}}'\n",
		"hosts":                  "[web]\nfrom-hosts\n",
		"sub/hosts.yml":          "all:\n  hosts:\n    from-sub:\n",
		"invdir/a.yml":           "all:\n  hosts:\n    from-dir:\n",
		"invdir/script*":         "#!/bin/sh\necho '{\"x\": [\"from-dir-script\"]}'\n",
		"ansible.cfg":            "",
		"sub/group_vars/all.yml": "from_sub_group_vars: yes\n",
	})
	wrong := "#!/bin/sh\necho '{\"other\": {\"hosts\": [\"WRONG-HOST\"]}, \"_meta\": {\"hostvars\": {}}}'\n"
	shadow := write(t, map[string]string{"cmdb*": wrong, "meta.py*": wrong, "hosts*": wrong, "script*": wrong})
	t.Setenv("PATH", shadow+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("EXE_TEST_SUB", "sub")
	t.Chdir(project)
	r := &ansibleRunner{dir: project}
	for _, sources := range [][]string{
		{"cmdb"}, {"meta.py"}, {"./cmdb"}, {"hosts"}, {"sub/hosts.yml"}, {"$EXE_TEST_SUB/hosts.yml"},
		{"invdir"}, {"cmdb", "sub/hosts.yml", "invdir"},
	} {
		inv, err := inventory.Load(sources...)
		require.NoError(t, err, sources)
		var args []string
		for _, s := range sources {
			args = append(args, "-i", s)
		}
		out, err := r.run(nil, "ansible-inventory", append(args, "--list")...)
		require.NoError(t, err)
		var list map[string]struct {
			Hosts    []string
			Hostvars map[string]map[string]any
		}
		require.NoError(t, json.Unmarshal(out, &list), "%s", out)
		var want []string
		for name, g := range list {
			if name != "_meta" {
				want = append(want, g.Hosts...)
			}
		}
		sort.Strings(want)
		got := inv.Hosts()
		sort.Strings(got)
		assert.Equal(t, want, got, strings.Join(sources, ","))
		for h, vars := range list["_meta"].Hostvars {
			assert.Equal(t, normalize(t, vars), normalize(t, inv.Host(h).Vars), "%s: %s", sources, h)
		}
	}
	_, err := inventory.Load("nope")
	assert.EqualError(t, err, filepath.Join(project, "nope")+": no such file or directory")
}
