package config

import (
	"bytes"
	"fmt"
	"strings"
)

// iniFile is exed.conf as written: its sections in the file's order, each
// with its options in order, and the line of each.
type iniFile struct {
	sections []*iniSection
}

type iniSection struct {
	name    string
	line    int
	options []iniOption
}

type iniOption struct {
	key, value string
	line       int
}

// parseINI reads exed.conf. The syntax is what the seed's reader, Python's
// configparser, and the library exed read it with before (gopkg.in/ini.v1)
// have in common, with ini.v1's inline comments, which exed.conf has always
// taken:
//
//   - a line is blank, a comment (its first character other than
//     whitespace is '#' or ';'), a section header "[name]", or an option
//     "key = value" ("key: value"), split at the first '=' or ':';
//   - leading and trailing whitespace is no part of a line; a value ends
//     where whitespace then '#' or ';' starts a comment; a value within
//     one pair of matching quotes ('...' or "...") is what they hold;
//   - a value is on its option's line (configparser continues a value on
//     the indented lines that follow; ini.v1 does not: such a line is an
//     error, not a value).
//
// Where configparser refuses a file's structure, so does exed, naming the
// file and the line: an option before any section header
// (MissingSectionHeaderError), an option given twice in a section
// (DuplicateOptionError) and a section given twice
// (DuplicateSectionError). ini.v1 took the first silently into a
// DEFAULT section and let the last of the others win. A [DEFAULT] section,
// whose options configparser gives every other section, is refused too:
// exed does not apply them, and taking it for a plugin's section would
// leave them unused. The byte order mark an editor may put first is
// skipped; lines end with "\n" or "\r\n".
func parseINI(path string, text []byte) (*iniFile, error) {
	text = bytes.TrimPrefix(text, []byte("\ufeff"))
	f := &iniFile{}
	var cur *iniSection
	sections := map[string]*iniSection{}
	for i, raw := range strings.Split(string(text), "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.LastIndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: %q: a section header needs its closing ']'", path, n, clip(line))
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return nil, fmt.Errorf("%s:%d: %q: text after a section header", path, n, clip(line))
			}
			name := line[1:end]
			switch {
			case name == "":
				return nil, fmt.Errorf("%s:%d: []: a section needs a name", path, n)
			case name == "DEFAULT":
				return nil, fmt.Errorf("%s:%d: [DEFAULT]: exed does not give a DEFAULT section's options to the other sections, as configparser does: set each option in its own section", path, n)
			}
			if first, ok := sections[name]; ok {
				return nil, fmt.Errorf("%s:%d: [%s]: repeated (first at line %d)", path, n, name, first.line)
			}
			cur = &iniSection{name: name, line: n}
			sections[name] = cur
			f.sections = append(f.sections, cur)
			continue
		}
		at := strings.IndexAny(line, "=:")
		if at < 0 {
			return nil, fmt.Errorf("%s:%d: %q: not an option (key = value) nor a [section] (a value is on its option's line)", path, n, clip(line))
		}
		key := strings.TrimSpace(line[:at])
		if key == "" {
			return nil, fmt.Errorf("%s:%d: %q: an option needs a name before %q", path, n, clip(line), line[at:at+1])
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: %s: option outside any section", path, n, key)
		}
		for _, o := range cur.options {
			if o.key == key {
				return nil, fmt.Errorf("%s:%d: [%s] %s: repeated (first at line %d)", path, n, cur.name, key, o.line)
			}
		}
		cur.options = append(cur.options, iniOption{key: key, value: unquote(cutComment(line[at+1:])), line: n})
	}
	return f, nil
}

// cutComment cuts a value where whitespace then '#' or ';' starts a
// comment.
func cutComment(v string) string {
	for i := 1; i < len(v); i++ {
		if (v[i] == '#' || v[i] == ';') && (v[i-1] == ' ' || v[i-1] == '\t') {
			return v[:i]
		}
	}
	return v
}

// clip shortens a line quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
