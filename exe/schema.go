package exe

import (
	"math"
	"regexp"
	"sort"
	"strings"
)

// Schema describes a task's options as a small subset of JSON Schema: an
// object with typed properties, some required, some with defaults. Its JSON
// form is a valid JSON Schema document.
type Schema struct {
	Type       string              `json:"type"` // always "object"
	Properties map[string]Property `json:"properties"`
	Required   []string            `json:"required,omitempty"`
}

// Property is one option of a Schema.
type Property struct {
	// Type lists the JSON types accepted: "string", "integer", "number",
	// "boolean", "array", "object".
	Type        []string `json:"type"`
	Description string   `json:"description,omitempty"`
	Default     any      `json:"default,omitempty"`
	// Minimum bounds numeric values (JSON Schema "minimum").
	Minimum *float64 `json:"minimum,omitempty"`
	// Maximum bounds numeric values (JSON Schema "maximum"): give one to
	// every number that becomes a duration or a count, so that a huge
	// value is refused rather than overflowing.
	Maximum *float64 `json:"maximum,omitempty"`
	// Pattern is a regular expression string values must match (JSON
	// Schema "pattern", RE2 syntax).
	Pattern string `json:"pattern,omitempty"`
}

// Validate checks opts against the schema and returns a copy with defaults
// filled in. It refuses unknown options, missing required ones and values of
// the wrong type with an ErrInvalid error naming the option.
func (s Schema) Validate(opts map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(s.Properties))
	names := make([]string, 0, len(opts))
	for name := range opts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		prop, ok := s.Properties[name]
		if !ok {
			return nil, Errorf(ErrInvalid, "taskopts: unknown option %q", truncate(name, 64))
		}
		v := opts[name]
		if !prop.accepts(v) {
			return nil, Errorf(ErrInvalid, "taskopts: option %q must be of type %s", name, strings.Join(prop.Type, " or "))
		}
		if err := prop.check(name, v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	for _, name := range s.Required {
		if _, ok := out[name]; !ok {
			return nil, Errorf(ErrInvalid, "taskopts: option %q is required", name)
		}
	}
	for name, prop := range s.Properties {
		if _, ok := out[name]; !ok && prop.Default != nil {
			out[name] = prop.Default
		}
	}
	return out, nil
}

// check applies Minimum, Maximum and Pattern.
func (p Property) check(name string, v any) error {
	if n, ok := toFloat(v); ok && p.Minimum != nil && n < *p.Minimum {
		return Errorf(ErrInvalid, "taskopts: option %q must be at least %v", name, *p.Minimum)
	}
	if n, ok := toFloat(v); ok && p.Maximum != nil && n > *p.Maximum {
		return Errorf(ErrInvalid, "taskopts: option %q must be at most %v", name, *p.Maximum)
	}
	if s, ok := v.(string); ok && p.Pattern != "" {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return Errorf(ErrInvalid, "taskopts: option %q has an invalid pattern in the task's schema", name)
		}
		if !re.MatchString(s) {
			return Errorf(ErrInvalid, "taskopts: option %q: %q does not match %s", name, truncate(s, 64), p.Pattern)
		}
	}
	return nil
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	}
	return 0, false
}

func (p Property) accepts(v any) bool {
	for _, t := range p.Type {
		if jsonTypeIs(v, t) {
			return true
		}
	}
	return false
}

func jsonTypeIs(v any, typ string) bool {
	switch typ {
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		switch v.(type) {
		case float64, float32, int, int64, int32:
			return true
		}
	case "integer":
		switch n := v.(type) {
		case int, int64, int32:
			return true
		case float64:
			return n == math.Trunc(n) && !math.IsInf(n, 0)
		}
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}
