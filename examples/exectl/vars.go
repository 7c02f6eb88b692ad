package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"

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

// keyValues reads "k=v k2='two words'" as Ansible's parse_kv does for
// extra vars: every value a string.
func keyValues(s string) (map[string]any, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, fmt.Errorf("--extra-vars %s: %w", s, err)
	}
	out := map[string]any{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--extra-vars %q: %q is not key=value (or @file, or YAML/JSON starting with { )", s, w)
		}
		out[k] = v
	}
	return out, nil
}

// splitWords splits s at spaces outside quotes, removing the quotes, as
// a shell would for simple words.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("a quote (%c) is not closed", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
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
