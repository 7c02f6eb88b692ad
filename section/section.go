// Package section reads one section of exed.conf as a plugin receives it: a
// map of option names to their values, as written. Typed getters parse a
// value or keep the default when it is absent or empty, and remember the
// first value that does not parse, so that a plugin's Configure reads every
// option and then returns one error naming the section, the option and the
// real cause, in the words the server uses for its own options:
//
//	s := section.New("sshnative", values)
//	cfg.Roles = s.String("roles", "roles")
//	cfg.OutputCap = s.Int("output_cap", 1<<20, 1)
//	cfg.CommandTimeout = s.Duration("command_timeout", 0)
//	if err := s.Err(); err != nil {
//		return err // [sshnative] output_cap: "lots" is not a whole number of at least 1
//	}
//	for _, k := range s.Unused() { log.Warn("unknown option ignored", "option", k) }
//
// Durations take Go's form ("90s", "1h30m"), days ("7d") or plain seconds;
// booleans take true/false, yes/no, on/off and 1/0, as exed.conf does.
package section

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Section is one config section being read. It is not safe for concurrent
// use.
type Section struct {
	name   string
	values map[string]string
	used   map[string]bool
	err    error
}

// New returns the section name ("sshnative") holding values.
func New(name string, values map[string]string) *Section {
	return &Section{name: name, values: values, used: map[string]bool{}}
}

// Name is the section's name.
func (s *Section) Name() string { return s.name }

// Err is the first value that did not parse, as "[name] key: cause", or nil.
func (s *Section) Err() error { return s.err }

// Unused lists, sorted, the options that no getter asked for: unknown
// options a plugin warns about.
func (s *Section) Unused() []string {
	var out []string
	for k := range s.values {
		if !s.used[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Has reports whether key is set to a non-empty value.
func (s *Section) Has(key string) bool {
	s.used[key] = true
	return strings.TrimSpace(s.values[key]) != ""
}

// lookup returns key's value; ok is false when it is absent or empty, which
// keeps the default, as an empty value in exed.conf does.
func (s *Section) lookup(key string) (string, bool) {
	s.used[key] = true
	v := strings.TrimSpace(s.values[key])
	return v, v != ""
}

func (s *Section) fail(key string, err error) {
	if s.err == nil {
		s.err = fmt.Errorf("[%s] %s: %w", s.name, key, err)
	}
}

// String returns key's value, or def.
func (s *Section) String(key, def string) string {
	if v, ok := s.lookup(key); ok {
		return v
	}
	return def
}

// List returns key's comma-separated values, blanks dropped, or def.
func (s *Section) List(key string, def []string) []string {
	v, ok := s.lookup(key)
	if !ok {
		return def
	}
	return SplitList(v)
}

// Int returns key as a whole number of at least min, or def.
func (s *Section) Int(key string, def, min int) int {
	v, ok := s.lookup(key)
	if !ok {
		return def
	}
	n, err := ParseInt(v, min)
	if err != nil {
		s.fail(key, err)
		return def
	}
	return n
}

// Bool returns key as a boolean, or def.
func (s *Section) Bool(key string, def bool) bool {
	v, ok := s.lookup(key)
	if !ok {
		return def
	}
	b, err := ParseBool(v)
	if err != nil {
		s.fail(key, err)
		return def
	}
	return b
}

// Duration returns key as a duration, or def.
func (s *Section) Duration(key string, def time.Duration) time.Duration {
	v, ok := s.lookup(key)
	if !ok {
		return def
	}
	d, err := ParseDuration(v)
	if err != nil {
		s.fail(key, err)
		return def
	}
	return d
}

// Check applies parse to key's value when it is set, and records its error.
func (s *Section) Check(key string, parse func(string) error) {
	if v, ok := s.lookup(key); ok {
		if err := parse(v); err != nil {
			s.fail(key, err)
		}
	}
}

// SplitList splits a comma-separated list, trimming blanks and dropping
// empty entries.
func SplitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseInt parses a whole number of at least min.
func ParseInt(v string, min int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, fmt.Errorf("%q is not a whole number of at least %d", v, min)
	}
	return n, nil
}

// ParseBool parses true/false, yes/no, on/off and 1/0, in any letter case.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, 1/0)", v)
}

// ParseDuration parses a Go duration ("90s", "1h30m"), a number of days
// ("7d") or a plain number of seconds; negative durations are refused.
func ParseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 5m, 7d, or seconds)", v)
	}
	return d, nil
}

// ErrUnknown is wrapped by the error of StrictUnused.
var ErrUnknown = errors.New("unknown option")

// StrictUnused returns an error naming the first unused option, for plugins
// that refuse unknown options rather than warn.
func (s *Section) StrictUnused() error {
	if u := s.Unused(); len(u) > 0 {
		return fmt.Errorf("[%s] %s: %w", s.name, u[0], ErrUnknown)
	}
	return nil
}
