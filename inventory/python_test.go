package inventory

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests give the same inputs to exed's readers and to the functions
// of Ansible that they reimplement, called in Ansible's own Python.

// oracle runs Ansible's functions on the inputs: shlex splitting of INI
// host lines, INI value typing, parse_address, expand_hostname_range and
// the YAML/JSON loader. Each answer is {"ok": value} or {"err": text}.
const oracle = `
import json, sys, shlex
from ansible.plugins.inventory.ini import InventoryModule
from ansible.plugins.inventory import expand_hostname_range
from ansible.parsing.utils.addresses import parse_address
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.ajson import AnsibleJSONEncoder

def run(fn, x):
    try:
        return {"ok": fn(x)}
    except Exception as e:
        return {"err": str(e)}

def addr(x):
    h, p = parse_address(x, allow_ranges=True)
    return [h, p or 0]

loader = DataLoader()
req = json.load(sys.stdin)
out = {
    "shlex": [run(lambda s: shlex.split(s, comments=True), s) for s in req["shlex"]],
    "values": [run(InventoryModule._parse_value, s) for s in req["values"]],
    "addresses": [run(addr, s) for s in req["addresses"]],
    "ranges": [run(expand_hostname_range, s) for s in req["ranges"]],
    "yaml": [run(loader.load, s) for s in req["yaml"]],
}
class Enc(AnsibleJSONEncoder):
    def default(self, o):
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        return super().default(o)

json.dump(out, sys.stdout, cls=Enc)
`

type answer struct {
	OK  json.RawMessage `json:"ok"`
	Err *string         `json:"err"`
}

// ansiblePython is the interpreter ansible runs with.
func ansiblePython(t *testing.T) string {
	ansible := testenv.NeedBinary(t, "ansible")
	f, err := os.Open(ansible)
	require.NoError(t, err)
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	interp := strings.Fields(strings.TrimPrefix(line, "#!"))
	require.NotEmpty(t, interp, "no interpreter line in %s", ansible)
	if len(interp) > 1 && strings.HasSuffix(interp[0], "/env") {
		return interp[1]
	}
	return interp[0]
}

func askAnsible(t *testing.T, req map[string][]string) map[string][]answer {
	cmd := exec.Command(ansiblePython(t), "-c", oracle)
	body, err := json.Marshal(req)
	require.NoError(t, err)
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var res map[string][]answer
	require.NoError(t, json.Unmarshal(out, &res))
	return res
}

func asJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var norm any
	require.NoError(t, json.Unmarshal(b, &norm))
	b, err = json.Marshal(norm)
	require.NoError(t, err)
	return string(b)
}

func normJSON(t *testing.T, raw json.RawMessage) string {
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	return asJSON(t, v)
}

func TestReadersMatchAnsiblesFunctions(t *testing.T) {
	req := map[string][]string{
		"shlex": {
			`web1`, `web1 a=1 b=2`, `h a="x y" b='p q'`, `h a=b#c d=e`, `h # comment`, `h a=x\ y`,
			`h a="say \"hi\""`, `h a="back\\slash" b="\n"`, `h a='it''s'`, `h a="" b=''`, `h a=\"`,
			`h	tab=1`, `h a="unterminated`, `h a=trailing\`, `h a="#not comment"`, `h a=ünï b=çödé`,
		},
		"values": {
			`22`, `-3`, `+4`, `1.5`, `1e3`, `1.`, `.5`, `0x1F`, `0o17`, `0b101`, `1_000`, `010`, `00`, `0_0`,
			`True`, `False`, `None`, `true`, `yes`, `"quoted"`, `'single'`, `'a' 'b'`, `"a" # c`, `plain # c`,
			`[1, 'two', 3.0]`, `{'a': [1, {'b': None}], 2: 'x', 1.5: 'f', True: 't', None: 'n'}`, `(1, 2)`, `()`,
			`1, 2`, `(1,)`, `[]`, `{}`, `set()`, `b'bytes'`, `r'\d'`, `'\x41\u00e9\n'`, `"""triple"""`,
			`f'{x}'`, `1 + 2`, `-(1)`, `--1`, `[1, 2`, `{'a' 1}`, `{'a': 1 'b': 2}`, `a=b`, `/srv/app`,
			`http://x/?a=1`, `12345678901234567890123`, `-9223372036854775808`, `Tru`, `len(x)`, ``,
		},
		"addresses": {
			`web1`, `web1:22`, `web[01:10]`, `web[01:10]:2222`, `db-[a:f].example.com`, `10.0.0.1`, `10.0.0.1:22`,
			`10.0.[1:3].1`, `::1`, `2001:db8::10`, `[2001:db8::10]:2222`, `fe80::1%eth0`, `2001:db8::*`, `cafe::x`,
			`2001:db8::[a:f]`, `[::1]:22`, `bad/name`, `web-`, `_web`, `web_`, `a..b`, `-web`, `ünïcode.example`,
			`host:http`, `[a:1]:2`, `all:`, `h:0`, `web*`, `192.0.2.*`, `1234:5678`, `a[1:2`, `[web]`,
		},
		"ranges": {
			`web[1:3]`, `web[01:03]`, `w[0:10:5]`, `w[3:1]`, `x[a:c]`, `x[A:C]`, `x[a:e:2]`, `r[1:2]-n[a:b]`,
			`w[:2]`, `w[1:]`, `w[01:3]`, `w[1:2:0]`, `w[a:9]`, `w[c:a]`, `w[1:2:3:4]`, `w[1]`, `w[1:2`, `w]1:2[`,
		},
		"yaml": {
			"a: yes\nb: no\nc: on\nd: off\ne: y\nf: True\ng: TRUE\n",
			"a: 0755\nb: 0x1F\nc: 0b11\nd: 1_000\ne: 12:30\nf: -0\ng: +5\nh: 012_3\n",
			"a: 1.5\nb: 1e3\nc: 1.0e+3\nd: .5\ng: 1:30.5\nh: 1_0.5\n",
			"a: ~\nb: null\nc:\nd: Null\ne: 'null'\n",
			"a: 2024-01-31\nb: '123'\nc: \"yes\"\nd: !!str 5\ne: !!int '7'\nf: |\n  two\n  lines\n",
			"base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd:\n  <<: [{x: 9}, *b]\n",
			`{"a": 1e3, "b": 10, "c": [1, null, true], "d": "yes", "e": {"__ansible_unsafe": "{{ x }}"}}`,
			"a: !unsafe '{{ x }}'\n",
			"a: 1\na: 2\n",
			"on: 1\n1: a\n1.5: b\nnull: c\n",
		},
	}
	res := askAnsible(t, req)

	check := func(kind string, i int, got any, err error) {
		t.Helper()
		want := res[kind][i]
		in := req[kind][i]
		if want.Err != nil {
			assert.Error(t, err, "%s %q: Ansible fails (%s), exed gives %v", kind, in, *want.Err, got)
			return
		}
		if assert.NoError(t, err, "%s %q: Ansible gives %s", kind, in, want.OK) {
			assert.Equal(t, normJSON(t, want.OK), asJSON(t, plain(got)), "%s %q", kind, in)
		}
	}
	for i, s := range req["shlex"] {
		got, err := shlexSplit(s)
		check("shlex", i, got, err)
	}
	for i, s := range req["values"] {
		got := iniValue(s)
		if res["values"][i].Err != nil {
			// _parse_value fails only on values no JSON can show.
			continue
		}
		check("values", i, got, nil)
	}
	for i, s := range req["addresses"] {
		h, p, err := parseAddress(s, true)
		check("addresses", i, []any{h, p}, err)
	}
	for i, s := range req["ranges"] {
		got, err := expandHostnameRange(s, 0)
		check("ranges", i, got, err)
	}
	for i, s := range req["yaml"] {
		root, d, err := loadYAML("t.yml", []byte(s), func(string) {})
		var got any
		if err == nil {
			got, err = d.value(root, 0)
		}
		check("yaml", i, got, err)
	}
}

// plain writes Unsafe values as the strings they are, as this oracle's
// JSON encoder does.
func plain(v any) any {
	switch x := v.(type) {
	case Unsafe:
		return string(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}
