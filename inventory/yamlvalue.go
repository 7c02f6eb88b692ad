package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Vaulted is a value encrypted with ansible-vault (a !vault tagged string
// in YAML). exed does not decrypt it; Conn refuses one where it needs the
// value, and ansible-inventory shows such values only with the vault
// password.
type Vaulted struct {
	// Ciphertext is the $ANSIBLE_VAULT;... text as written.
	Ciphertext string
}

// MarshalJSON writes the value as ansible-inventory does without the vault
// password: an object holding the ciphertext.
func (v Vaulted) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"__ansible_vault": v.Ciphertext})
}

// Unsafe is a string Ansible never renders as a template: a !unsafe tagged
// value in YAML, {"__ansible_unsafe": ...} in JSON. Conn takes it as
// written even when it holds "{{".
type Unsafe string

// MarshalJSON writes the value as ansible-inventory does.
func (u Unsafe) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"__ansible_unsafe": string(u)})
}

// yamlDoc is one YAML (or JSON) file being read the way Ansible's loader
// reads it: JSON first, then YAML 1.1 as PyYAML resolves it, so yes/no/on/
// off are booleans, 0755 is octal, 1e3 is a string; a duplicate mapping key
// keeps its last value, with a warning.
type yamlDoc struct {
	file string
	json bool // the text is JSON: plain scalars follow JSON's rules
	warn func(string)
}

// loadYAML parses data into its root node; nil for an empty document. A
// stream of several documents is an error, as in Ansible.
func loadYAML(file string, data []byte, warn func(string)) (*yaml.Node, *yamlDoc, error) {
	d := &yamlDoc{file: file, warn: warn}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("$ANSIBLE_VAULT;")) {
		return nil, d, fmt.Errorf("%s: the file is encrypted with ansible-vault, which exed does not decrypt", file)
	}
	d.json = json.Valid(data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d, nil
		}
		return nil, d, fmt.Errorf("%s: %s", file, yamlErrorText(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, d, fmt.Errorf("%s: %s", file, yamlErrorText(err))
		}
		return nil, d, fmt.Errorf("%s:%d: expected a single document, found another one", file, extra.Line)
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, d, nil
		}
		n = n.Content[0]
	}
	return n, d, nil
}

// yamlErrorText turns "yaml: line 3: ..." into "line 3: ...".
func yamlErrorText(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func (d *yamlDoc) errorf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", d.file, n.Line, fmt.Sprintf(format, args...))
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// pair is one entry of a mapping after merge keys and duplicates are dealt
// with: its key as a value, and the key and value nodes.
type pair struct {
	key      any
	keyNode  *yaml.Node
	valNode  *yaml.Node
	position int
}

// pairs lists a mapping's entries as PyYAML and Ansible build the dict:
// entries of "<<" merge keys first, then the mapping's own, a later entry
// replacing the value of an earlier one with an equal key but keeping its
// place.
func (d *yamlDoc) pairs(n *yaml.Node) ([]pair, error) {
	flat, err := d.flatten(n, 0)
	if err != nil {
		return nil, err
	}
	out := make([]pair, 0, len(flat))
	index := make(map[string]int, len(flat))
	for _, kv := range flat {
		if kn := resolve(kv[0]); kn == nil || kn.Kind != yaml.ScalarNode {
			// Python cannot hash a list or a mapping, and a key that is an
			// alias of its own mapping would never end.
			return nil, d.errorf(kv[0], "a mapping key must be a scalar")
		}
		k, err := d.value(kv[0], 0)
		if err != nil {
			return nil, err
		}
		id, ok := keyID(k)
		if !ok {
			return nil, d.errorf(kv[0], "a mapping key must be a scalar")
		}
		if i, dup := index[id]; dup {
			if !d.json && kv[2] == nil && out[i].position >= 0 {
				d.warn(fmt.Sprintf("%s:%d: found a duplicate dict key (%v); using the last value only, as Ansible does (the first is at line %d)", d.file, kv[0].Line, k, out[i].keyNode.Line))
			}
			out[i].valNode, out[i].keyNode = kv[1], kv[0]
			continue
		}
		index[id] = len(out)
		pos := 0
		if kv[2] != nil {
			pos = -1 // merged in
		}
		out = append(out, pair{key: k, keyNode: kv[0], valNode: kv[1], position: pos})
	}
	return out, nil
}

// flatten returns the key and value nodes of a mapping with its merge keys
// expanded (the third node is non-nil for merged entries).
func (d *yamlDoc) flatten(n *yaml.Node, depth int) ([][3]*yaml.Node, error) {
	if depth > 50 {
		return nil, d.errorf(n, "merge keys nested too deeply")
	}
	var merged, own [][3]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.TaggedStyle) == 0 && !d.json {
			v = resolve(v)
			var sources []*yaml.Node
			switch v.Kind {
			case yaml.MappingNode:
				sources = []*yaml.Node{v}
			case yaml.SequenceNode:
				for j := len(v.Content) - 1; j >= 0; j-- {
					sources = append(sources, resolve(v.Content[j]))
				}
			default:
				return nil, d.errorf(k, "a merge key (<<) needs a mapping or a list of mappings")
			}
			for _, s := range sources {
				if s.Kind != yaml.MappingNode {
					return nil, d.errorf(k, "a merge key (<<) needs a mapping or a list of mappings")
				}
				sub, err := d.flatten(s, depth+1)
				if err != nil {
					return nil, err
				}
				for _, e := range sub {
					merged = append(merged, [3]*yaml.Node{e[0], e[1], k})
				}
			}
			continue
		}
		own = append(own, [3]*yaml.Node{k, v, nil})
	}
	return append(merged, own...), nil
}

// keyID identifies a key for duplicate detection with Python's equality,
// where True == 1 == 1.0.
func keyID(k any) (string, bool) {
	switch x := k.(type) {
	case []any, map[string]any:
		return "", false
	case bool:
		if x {
			return "n:1", true
		}
		return "n:0", true
	case int:
		return "n:" + strconv.Itoa(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e18 {
			return "n:" + strconv.Itoa(int(x)), true
		}
	}
	return fmt.Sprintf("%T:%v", k, k), true
}

// value converts a node into a Go value: string, bool, int (or *big.Int),
// float64, nil, []any, map[string]any or Vaulted.
func (d *yamlDoc) value(n *yaml.Node, depth int) (any, error) {
	n = resolve(n)
	if n == nil {
		return nil, nil
	}
	if depth > 200 {
		return nil, d.errorf(n, "values nested too deeply")
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return d.scalar(n)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := d.value(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		ps, err := d.pairs(n)
		if err != nil {
			return nil, err
		}
		if d.json {
			// Ansible's JSON decoder turns these objects into values.
			for _, p := range ps {
				switch p.key {
				case "__ansible_unsafe", "__ansible_vault":
					v, err := d.value(p.valNode, depth+1)
					if err != nil {
						return nil, err
					}
					if p.key == "__ansible_vault" {
						return Vaulted{Ciphertext: strOf(v)}, nil
					}
					if sv, ok := v.(string); ok {
						return Unsafe(sv), nil
					}
					return v, nil
				}
			}
		}
		out := make(map[string]any, len(ps))
		for _, p := range ps {
			k, ok := jsonKey(p.key)
			if !ok {
				return nil, d.errorf(p.keyNode, "a mapping key must be a scalar")
			}
			v, err := d.value(p.valNode, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, d.errorf(n, "unexpected YAML node")
}

// PyYAML's implicit resolvers (YAML 1.1), which Ansible's loader uses.
var (
	yamlBoolRE  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yamlNullRE  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	yamlIntRE   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yamlFloatRE = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	jsonNumRE   = regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)
)

func (d *yamlDoc) scalar(n *yaml.Node) (any, error) {
	s := n.Value
	if n.Style&yaml.TaggedStyle != 0 {
		switch n.Tag {
		case "!!str", "!", "!!binary", "!!timestamp":
			return s, nil
		case "!unsafe":
			return Unsafe(s), nil
		case "!vault", "!vault-encrypted":
			return Vaulted{Ciphertext: s}, nil
		case "!!int":
			if v, ok := yamlInt(s); ok {
				return v, nil
			}
		case "!!float":
			if v, ok := yamlFloat(s); ok {
				return v, nil
			}
		case "!!bool":
			if yamlBoolRE.MatchString(s) {
				return yamlBool(s), nil
			}
		case "!!null":
			return nil, nil
		default:
			return nil, d.errorf(n, "could not determine a constructor for the tag %s", n.Tag)
		}
		return nil, d.errorf(n, "%q is not a valid %s", s, n.Tag)
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return s, nil
	}
	if d.json {
		switch {
		case s == "true":
			return true, nil
		case s == "false":
			return false, nil
		case s == "null":
			return nil, nil
		}
		if m := jsonNumRE.FindStringSubmatch(s); m != nil {
			if m[1] == "" && m[2] == "" {
				v := bigToValue(strings.TrimPrefix(s, "-"), 10)
				if strings.HasPrefix(s, "-") {
					v = negate(v)
				}
				return v, nil
			}
			f, _ := strconv.ParseFloat(s, 64)
			return f, nil
		}
		return s, nil
	}
	switch {
	case yamlNullRE.MatchString(s):
		return nil, nil
	case yamlBoolRE.MatchString(s):
		return yamlBool(s), nil
	case yamlIntRE.MatchString(s):
		if v, ok := yamlInt(s); ok {
			return v, nil
		}
	case yamlFloatRE.MatchString(s):
		if v, ok := yamlFloat(s); ok {
			return v, nil
		}
	}
	return s, nil
}

func yamlBool(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		return true
	}
	return false
}

// yamlInt is PyYAML's construct_yaml_int.
func yamlInt(s string) (any, bool) {
	v := strings.ReplaceAll(s, "_", "")
	neg := false
	if v != "" && (v[0] == '-' || v[0] == '+') {
		neg = v[0] == '-'
		v = v[1:]
	}
	if v == "" {
		return nil, false
	}
	var n *big.Int
	var ok bool
	switch {
	case v == "0":
		return 0, true
	case strings.HasPrefix(v, "0b"):
		n, ok = new(big.Int).SetString(v[2:], 2)
	case strings.HasPrefix(v, "0x"):
		n, ok = new(big.Int).SetString(v[2:], 16)
	case v[0] == '0':
		n, ok = new(big.Int).SetString(v, 8)
	case strings.Contains(v, ":"):
		n, ok = big.NewInt(0), true
		for _, part := range strings.Split(v, ":") {
			p, err := strconv.ParseInt(part, 10, 64)
			if err != nil {
				return nil, false
			}
			n.Mul(n, big.NewInt(60)).Add(n, big.NewInt(p))
		}
	default:
		n, ok = new(big.Int).SetString(v, 10)
	}
	if !ok {
		return nil, false
	}
	if neg {
		n.Neg(n)
	}
	if n.IsInt64() {
		return int(n.Int64()), true
	}
	return n, true
}

// yamlFloat is PyYAML's construct_yaml_float.
func yamlFloat(s string) (any, bool) {
	v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	sign := 1.0
	if v != "" && (v[0] == '-' || v[0] == '+') {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	switch {
	case v == ".inf":
		return sign * math.Inf(1), true
	case v == ".nan":
		return math.NaN(), true
	case strings.Contains(v, ":"):
		parts := strings.Split(v, ":")
		f, base := 0.0, 1.0
		for i := len(parts) - 1; i >= 0; i-- {
			p, err := strconv.ParseFloat(parts[i], 64)
			if err != nil {
				return nil, false
			}
			f += p * base
			base *= 60
		}
		return sign * f, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, false
	}
	return sign * f, true
}
