package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
)

// extraVars merges ansible-playbook's -e/--extra-vars values, later ones
// winning as in Ansible: "@file" is a YAML or JSON file, a value starting
// with "{" or "[" is YAML (JSON) itself, anything else is key=value pairs
// separated by spaces (quotes group words), whose values are strings.
func extraVars(values []string) (map[string]any, error) {
	out := map[string]any{}
	for _, v := range values {
		var m map[string]any
		var err error
		switch {
		case v == "":
			continue
		case strings.HasPrefix(v, "@"):
			m, err = varsFile(v[1:])
		case v[0] == '/' || v[0] == '.':
			return nil, usagef("--extra-vars %s: write a file's name with @ before it (@%s), as ansible-playbook does", v, v)
		case v[0] == '{' || v[0] == '[':
			m, _, err = inventory.ParseVars([]byte(v), "--extra-vars")
		default:
			m, err = keyValues(v)
		}
		if err != nil {
			return nil, usageError{err}
		}
		for k, x := range m {
			x, err := wireValue(x, k)
			if err != nil {
				return nil, usageError{err}
			}
			out[k] = x
		}
	}
	return out, nil
}

func varsFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--extra-vars: %w", err)
	}
	m, _, err := inventory.ParseVars(b, path)
	return m, err
}

// wireValue is a variable as JSON can carry it: a !unsafe string is a
// string (exed never renders extra vars as templates), a !vault one is
// refused, a big integer is a JSON number.
func wireValue(v any, name string) (any, error) {
	switch x := v.(type) {
	case inventory.Unsafe:
		return string(x), nil
	case inventory.Vaulted:
		return nil, fmt.Errorf("--extra-vars: %s is encrypted with ansible-vault, which exectl does not decrypt", name)
	case *big.Int:
		return json.Number(x.String()), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			w, err := wireValue(e, name)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			w, err := wireValue(e, name+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = w
		}
		return out, nil
	}
	return v, nil
}

// keyValues reads "k=v k2='two words'" as ansible-playbook reads a -e
// value that is neither @file nor YAML: every value a string, split at
// spaces outside quotes and Jinja2 blocks ({{ }}, {% %}, {# #}), Python
// escapes (\n, \", \x41...) decoded, each word cut at its first "=" that
// no backslash escapes, and a value's quotes removed only when they
// enclose all of it (x={"a":1} keeps its quotes: the value is {"a":1}).
// TestKeyValuesAsAnsible holds these rules against Ansible's own parser.
func keyValues(s string) (map[string]any, error) {
	words, err := splitArgs(s)
	if err != nil {
		return nil, fmt.Errorf("--extra-vars %s: %w", s, err)
	}
	out := map[string]any{}
	for _, w := range words {
		x := decodeEscapes(w)
		pos := -1
		for i := 1; i < len(x); i++ {
			if x[i] == '=' && x[i-1] != '\\' {
				pos = i
				break
			}
		}
		k := ""
		if pos > 0 {
			k = strings.TrimSpace(x[:pos])
		}
		if k == "" {
			return nil, fmt.Errorf("--extra-vars %q: %q is not key=value (or @file, or YAML/JSON starting with { )", s, w)
		}
		out[k] = unquote(strings.TrimSpace(x[pos+1:]))
	}
	return out, nil
}

// splitArgs splits s at spaces and newlines outside quotes and outside
// Jinja2 blocks, keeping the quotes. A quote a backslash escapes does not
// open or close one.
func splitArgs(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	quote := byte(0)
	depth := map[string]int{}
	blocks := [][2]string{{"{{", "}}"}, {"{%", "%}"}, {"{#", "#}"}}
	inBlock := func() bool { return depth["{{"]+depth["{%"]+depth["{#"] > 0 }
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote && s[i-1] != '\\' {
				quote = 0
			}
		case (c == '\'' || c == '"') && (i == 0 || s[i-1] != '\\'):
			quote = c
		case (c == ' ' || c == '\t' || c == '\n') && !inBlock():
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
			continue
		default:
			for _, b := range blocks {
				if strings.HasPrefix(s[i:], b[0]) {
					depth[b[0]]++
				} else if strings.HasPrefix(s[i:], b[1]) && depth[b[0]] > 0 {
					depth[b[0]]--
				}
			}
		}
		cur.WriteByte(c)
	}
	if quote != 0 {
		return nil, fmt.Errorf("a quote (%c) is not closed", quote)
	}
	if inBlock() {
		return nil, fmt.Errorf("a Jinja2 block ({{, {%% or {#) is not closed")
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}

// decodeEscapes decodes the backslash escapes of Python string literals
// that Ansible decodes in key=value words: \\ \' \" \a \b \f \n \r \t
// \v, \xHH, \uHHHH and \UHHHHHHHH. Other backslashes stay as they are.
func decodeEscapes(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	simple := map[byte]string{'\\': "\\", '\'': "'", '"': "\"", 'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v"}
	hexLen := map[byte]int{'x': 2, 'u': 4, 'U': 8}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		e := s[i+1]
		if r, ok := simple[e]; ok {
			b.WriteString(r)
			i++
			continue
		}
		if n, ok := hexLen[e]; ok && i+2+n <= len(s) {
			if v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32); err == nil && utf8.ValidRune(rune(v)) {
				b.WriteRune(rune(v))
				i += 1 + n
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unquote removes the quotes that enclose all of v, the same quote at
// both ends and the last one not escaped.
func unquote(v string) string {
	if len(v) > 1 && v[0] == v[len(v)-1] && (v[0] == '"' || v[0] == '\'') && v[len(v)-2] != '\\' {
		return v[1 : len(v)-1]
	}
	return v
}

// taskOptions reads --opt k=v as the task's schema types each option: a
// value an option of type integer, number or boolean takes is sent as
// such ("batch=2" is the number 2, "batch=25%" the string), array and
// object values are JSON or YAML. An option the schema does not know is
// sent as a string, and the server names it in its refusal.
func taskOptions(values []string, schema exe.Schema) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--opt %q: write key=value", kv)
		}
		out[k] = typed(v, schema.Properties[k].Type)
	}
	return out, nil
}

// typed converts v to the first of types (other than string) it reads
// as, else leaves it a string.
func typed(v string, types []string) any {
	has := func(t string) bool { return contains(types, t) }
	if has("integer") {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	if has("number") {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	if has("boolean") {
		switch strings.ToLower(v) {
		case "true", "yes", "on", "1":
			return true
		case "false", "no", "off", "0":
			return false
		}
	}
	if has("array") || has("object") {
		var x any
		if m, _, err := inventory.ParseVars([]byte("v: "+v), "--opt"); err == nil && m != nil {
			x = m["v"]
			if _, ok := x.([]any); ok && has("array") {
				return x
			}
			if _, ok := x.(map[string]any); ok && has("object") {
				return x
			}
		}
	}
	return v
}
