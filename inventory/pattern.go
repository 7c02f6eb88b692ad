package inventory

import (
	"regexp"
	"sort"
	"strings"

	"github.com/0ops/exed/exe"
)

// subscriptRE is Ansible's "group[0]" / "group[0:2]" subscript. Subscripts
// select by inventory order, which exed does not promise, so they are
// refused rather than misread as a glob character class.
var subscriptRE = regexp.MustCompile(`^(.+)\[(?:-?[0-9]+|[0-9]+[:-][0-9]*)\]$`)

// bracketRE finds ':'-separated terms the way Ansible does: a term is made
// of characters other than whitespace and ":[]", or whole [...] groups.
var bracketRE = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)

// splitPattern splits a pattern into terms: on ',' when it has one, else on
// ':' outside brackets.
func splitPattern(pattern string) []string {
	var terms []string
	if strings.Contains(pattern, ",") {
		terms = strings.Split(pattern, ",")
	} else {
		terms = bracketRE.FindAllString(pattern, -1)
	}
	out := terms[:0]
	for _, t := range terms {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Match returns the sorted, de-duplicated names that pattern selects, with
// Ansible's semantics: terms separated by ',' or ':'; "all" or "*" for every
// host; group names (with their descendants); shell globs (* ? [abc] [!abc]);
// "~regex" (anchored at the start); "&term" intersects and "!term" excludes,
// applied after every plain term whatever their order; localhost is
// implicit. A pattern that selects nothing gives an empty list.
func (inv *Inventory) Match(pattern string) ([]string, error) {
	terms := splitPattern(pattern)
	var regular, intersect, exclude []string
	for _, t := range terms {
		switch t[0] {
		case '&':
			intersect = append(intersect, t[1:])
		case '!':
			exclude = append(exclude, t[1:])
		default:
			regular = append(regular, t)
		}
	}
	if len(regular) == 0 && len(terms) > 0 {
		regular = []string{"all"}
	}
	set := map[string]bool{}
	for _, t := range regular {
		hosts, err := inv.matchOne(t)
		if err != nil {
			return nil, err
		}
		for h := range hosts {
			set[h] = true
		}
	}
	for _, t := range intersect {
		hosts, err := inv.matchOne(t)
		if err != nil {
			return nil, err
		}
		for h := range set {
			if !hosts[h] {
				delete(set, h)
			}
		}
	}
	for _, t := range exclude {
		hosts, err := inv.matchOne(t)
		if err != nil {
			return nil, err
		}
		for h := range hosts {
			delete(set, h)
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out, nil
}

// matchOne resolves one term without its & or ! prefix.
func (inv *Inventory) matchOne(term string) (map[string]bool, error) {
	out := map[string]bool{}
	if term == "" {
		return nil, exe.Errorf(exe.ErrInvalid, "pattern: empty term after '&' or '!'")
	}
	if _, ok := inv.hosts[term]; ok {
		out[term] = true
		return out, nil
	}
	regex := term[0] == '~'
	if !regex && subscriptRE.MatchString(term) {
		return nil, exe.Errorf(exe.ErrInvalid, "pattern: subscripts such as %q are not supported", term)
	}
	re, err := compileTerm(term)
	if err != nil {
		return nil, err
	}
	matchedGroup := false
	seen := map[string]bool{}
	for name := range inv.groups {
		if re.MatchString(name) {
			matchedGroup = true
			inv.hostsOf(name, out, seen)
		}
	}
	if !matchedGroup || regex || strings.ContainsAny(term, ".?*[") {
		for name := range inv.hosts {
			if re.MatchString(name) {
				out[name] = true
			}
		}
	}
	if len(out) == 0 && localNames[term] {
		out[term] = true // the implicit localhost
	}
	return out, nil
}

// compileTerm turns a glob (Python fnmatch rules) or a "~regex" into a Go
// regular expression; the glob must match the whole name, the regex its start.
func compileTerm(term string) (*regexp.Regexp, error) {
	var expr string
	if term[0] == '~' {
		expr = `^(?:` + term[1:] + `)`
	} else {
		expr = `^(?s:` + globToRegexp(term) + `)$`
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, exe.Errorf(exe.ErrInvalid, "pattern: invalid term %q", term)
	}
	return re, nil
}

// globToRegexp follows Python's fnmatch.translate: * ? [seq] [!seq]; an
// unclosed '[' is a literal.
func globToRegexp(glob string) string {
	var b strings.Builder
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(glob) && glob[j] == '!' {
				j++
			}
			if j < len(glob) && glob[j] == ']' {
				j++
			}
			for j < len(glob) && glob[j] != ']' {
				j++
			}
			if j >= len(glob) {
				b.WriteString(`\[`)
				continue
			}
			stuff := glob[i+1 : j]
			i = j
			neg := strings.HasPrefix(stuff, "!")
			if neg {
				stuff = stuff[1:]
			}
			stuff = strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`, `^`, `\^`).Replace(stuff)
			if neg {
				stuff = "^" + stuff
			}
			b.WriteString("[" + stuff + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}
