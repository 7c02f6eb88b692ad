package inventory_test

import (
	"strings"
	"testing"

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
	assert.Equal(t, "2222", h.Vars["ansible_port"])
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
}

func TestDefaultInventoryListsLocalhost(t *testing.T) {
	inv := inventory.Default()
	for _, p := range []string{"*", "all", "localhost", "ungrouped"} {
		got, err := inv.Match(p)
		require.NoError(t, err)
		assert.Equal(t, []string{"localhost"}, got, p)
	}
	h := inv.Host("localhost")
	assert.False(t, h.Implicit)
	assert.True(t, h.Local())
}

func TestPatterns(t *testing.T) {
	inv := parse(t, sample)
	for pattern, want := range map[string]string{
		"web":                   "web-extra web01.example.com web02.example.com web03.example.com web04.example.com web05.example.com",
		"web*":                  "web-extra web01.example.com web02.example.com web03.example.com web04.example.com web05.example.com",
		"web*:&prod:!web03*":    "web-extra web01.example.com web02.example.com web04.example.com web05.example.com",
		"web:&staging":          "web05.example.com",
		"!web:db":               "db-a db-b db-c",
		"db,staging":            "db-a db-b db-c stage0 stage3 stage6 web03.example.com web05.example.com",
		"prod:!web":             "db-a db-b db-c",
		"~db-[ab]":              "db-a db-b",
		"~web0[12]":             "web01.example.com web02.example.com",
		"web0?.example.com":     "web01.example.com web02.example.com web03.example.com web04.example.com web05.example.com",
		"web0[!13].example.com": "web02.example.com web04.example.com web05.example.com",
		"ungrouped":             "jump lonely.example.com",
		"localhost":             "localhost",
		"localhost:jump":        "jump localhost",
		"nothere":               "",
		"empty":                 "",
		"*:!all":                "",
		"stage3":                "stage3",
		"&staging":              "stage0 stage3 stage6 web05.example.com",
		"all:!localhost":        "db-a db-b db-c jump lonely.example.com stage0 stage3 stage6 web-extra web01.example.com web02.example.com web03.example.com web04.example.com web05.example.com",
	} {
		got, err := inv.Match(pattern)
		require.NoError(t, err, pattern)
		assert.Equal(t, strings.Fields(want), got, pattern)
	}
	for _, bad := range []string{"~(", "web[0]", "web[0:2]", "!"} {
		_, err := inv.Match(bad)
		assert.ErrorIs(t, err, exe.ErrInvalid, bad)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	for text, want := range map[string]string{
		"a\n[web\nb\n":                       "hosts.ini:2: malformed section header",
		"[web:stuff]\n":                      `hosts.ini:1: unknown section type "stuff"`,
		"[web:vars]\nnovalue\n":              `hosts.ini:2: expected key=value in [web:vars]`,
		"[web]\nweb[1:x]\n":                  "hosts.ini:2: host \"web[1:x]\": range [1:x] must be numbers",
		"[web]\nweb[01:5]\n":                 "zero-padded begin and end must have the same width",
		"[web]\nweb[5:1]\n":                  "begin is after end",
		"[web]\nweb[1:3\n":                   `host "web[1:3": unterminated range`,
		"[web]\nweb[1:3]:x\n":                `"x" is not a port`,
		"[web]\nh1 user\n":                   `hosts.ini:2: expected key=value after the host name, got "user"`,
		"[web]\nh1 a=\"unterminated\n":       "unterminated quote",
		"[web]\nh1:http\n":                   `"http" is not a port`,
		"[web]\nbad/name\n":                  `host name "bad/name"`,
		"[a:children]\nb\n[b:children]\na\n": "is its own ancestor",
		"[web]\nw[1:9999999]\n":              "is larger than 100000",
		"[all]\nh\n":                         "hosts cannot be listed under [all]",
		"[bad group]\n":                      `invalid group name "bad group"`,
	} {
		_, err := inventory.Parse(strings.NewReader(text), "hosts.ini")
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
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
	for _, seed := range []string{"all", "web*:&prod:!web03*", "~db-[ab]", "a,b,,c", "[", "[!]", "[]]", "~", "&", "!!x", "web[0]", "x:y:z", "*?*[a-"} {
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
	assert.Equal(t, "2222", inv.Host("web02").Vars["ansible_port"])
}
