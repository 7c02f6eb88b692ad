package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExtraVars(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vars.yml")
	require.NoError(t, os.WriteFile(file, []byte("port: 80\nenabled: yes\nmode: 0644\ntmpl: !unsafe '{{ x }}'\nnested: {a: [1, !unsafe '{{ y }}']}\nbig: 18446744073709551616\n"), 0o600))
	vars, err := extraVars([]string{"@" + file, `name="two words" port=8080`, `{"list": [1, "b"], "on": false}`})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"port": "8080", "name": "two words", // key=value: strings, later wins
		"on": false, "enabled": true, "mode": 0o644, "tmpl": "{{ x }}",
		"nested": map[string]any{"a": []any{1, "{{ y }}"}},
		"big":    json.Number("18446744073709551616"),
		"list":   []any{1, "b"},
	}, vars)

	vault := filepath.Join(dir, "vault.yml")
	require.NoError(t, os.WriteFile(vault, []byte("secret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n"), 0o600))
	for arg, msg := range map[string]string{
		"@" + vault:         "secret is encrypted with ansible-vault",
		"@" + dir + "/nope": "no such file",
		"./vars.yml":        "write a file's name with @ before it",
		"[1, 2]":            "must be a mapping",
		"k":                 `"k" is not key=value`,
		`k="open`:           "a quote (\") is not closed",
		"{a: [}":            "--extra-vars",
	} {
		_, err := extraVars([]string{arg})
		assert.ErrorContains(t, err, msg, arg)
		var usage usageError
		assert.ErrorAs(t, err, &usage, arg)
	}
}

func TestTaskOptionsTypedBySchema(t *testing.T) {
	schema := exe.Schema{Properties: map[string]exe.Property{
		"batch":    {Type: []string{"integer", "string"}},
		"pause":    {Type: []string{"number"}},
		"graceful": {Type: []string{"boolean"}},
		"service":  {Type: []string{"string"}},
		"hosts":    {Type: []string{"array"}},
	}}
	opts, err := taskOptions([]string{"batch=25%", "pause=0.5", "graceful=yes", "service=42", "hosts=[a, b]", "other=1"}, schema)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"batch": "25%", "pause": 0.5, "graceful": true, "service": "42",
		"hosts": []any{"a", "b"}, "other": "1"}, opts)
	opts, err = taskOptions([]string{"batch=2", "graceful=off", "service=a=b"}, schema)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"batch": int64(2), "graceful": false, "service": "a=b"}, opts)
	_, err = taskOptions([]string{"batch"}, schema)
	assert.ErrorContains(t, err, "write key=value")
}

// keyValues reads -e key=value words as ansible-playbook does: the same
// words given to Ansible's own parser (ansible.parsing.splitter.parse_kv,
// which ansible-playbook applies to such a -e value) give the same
// variables.
func TestKeyValuesAsAnsible(t *testing.T) {
	corpus := []string{
		`port=8080`,
		`name="two words" port=8080`,
		`x={"a":1}`,
		`x='{"a": 1, "b": [2]}'`,
		`msg='it''s'`,
		`k=v'w'`,
		`k='a b'c`,
		`k="a\"b"`,
		`path=C:\\temp`,
		`nl=a\nb tab="x\ty"`,
		`hex=\x41\u00e9`,
		`eq=a=b`,
		`esc\=key=v`,
		`spaced=1    other=2  `,
		`tmpl={{ a | default('b c') }} z=1`,
		`expr={% if x %}y{% endif %}`,
		`empty= after=1`,
		`q="" s=''`,
		"multi=a\nnext=b",
	}
	py := ansiblePython(t)
	in, err := json.Marshal(corpus)
	require.NoError(t, err)
	cmd := exec.Command(py, "-c", `import json, sys
from ansible.parsing.splitter import parse_kv
print(json.dumps([parse_kv(s) for s in json.load(sys.stdin)]))`)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var want []map[string]any
	require.NoError(t, json.Unmarshal(out, &want))
	require.Len(t, want, len(corpus))
	for i, s := range corpus {
		got, err := keyValues(s)
		if assert.NoError(t, err, "%q", s) {
			assert.Equal(t, want[i], got, "%q", s)
		}
	}
}

// ansiblePython is the interpreter the ansible command runs with, whose
// modules hold Ansible's parsers.
func ansiblePython(t *testing.T) string {
	ansible := testenv.NeedBinary(t, "ansible")
	b, err := os.ReadFile(ansible)
	require.NoError(t, err)
	line, _, _ := strings.Cut(string(b), "\n")
	interp := strings.Fields(strings.TrimPrefix(line, "#!"))
	require.NotEmpty(t, interp, "no interpreter line in %s", ansible)
	if len(interp) > 1 && strings.HasSuffix(interp[0], "/env") {
		return interp[1]
	}
	return interp[0]
}
