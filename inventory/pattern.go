package inventory

import (
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/0ops/exed/exe"
)

// Host selection follows Ansible's InventoryManager (get_hosts,
// _evaluate_patterns, _match_one_pattern, _enumerate_matches,
// _apply_subscript) step by step, on the inventory's own order, so that
// subscripts pick the hosts Ansible picks.

// subscriptRE is PATTERN_WITH_SUBSCRIPT: "group[0]", "group[-1]",
// "group[0:2]", "group[1:]" (and the removed "x-y" form).
var subscriptRE = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)

// bracketRE finds ':'-separated terms the way Ansible does: a term is made
// of characters other than whitespace and ":[]", or whole [...] groups.
var bracketRE = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)

// splitPattern is split_host_pattern: on ',' when the pattern has one;
// else the whole pattern when it is one address (an IPv6 address, a range);
// else on ':' outside brackets.
func splitPattern(pattern string) []string {
	var terms []string
	switch {
	case strings.Contains(pattern, ","):
		terms = strings.Split(pattern, ",")
	default:
		if _, _, err := parseAddress(pattern, true); err == nil {
			terms = []string{pattern}
		} else {
			terms = bracketRE.FindAllString(pattern, -1)
		}
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
// Ansible's semantics: terms separated by ',' (or ':' when the pattern has
// no ',' and is not one IPv6 address); "all" or "*" for every host; group
// names (with their descendants); shell globs (* ? [abc] [!abc]) on group
// and host names; "~regex" (matched at the start, Go's RE2 syntax);
// "&term" intersects and "!term" excludes, applied after every plain term
// whatever their order; a subscript (web[0], web[-1], web[0:2], web[1:],
// inclusive) picks from a term's hosts in the inventory's order, and one
// out of range selects nothing, as with "ansible PATTERN --list-hosts".
// localhost, 127.0.0.1 and ::1 select the implicit localhost when the
// inventory does not list them. A pattern that selects nothing gives an
// empty list; a malformed term is an exe.ErrInvalid error.
func (inv *Inventory) Match(pattern string) ([]string, error) {
	m := &matcher{inv: inv}
	hosts, err := m.evaluate(splitPattern(pattern))
	if errors.Is(err, errOutOfRange) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return m.sortedNames(hosts), nil
}

type matcher struct {
	inv *Inventory
	// implicit is the implicit localhost once a term selected it: as in
	// Ansible, the first localhost name used stands for all of them.
	implicit *host
	// scratch is scratchSet's set; seen is enumerate's, kept clear
	// between terms.
	scratch *hostBits
	seen    []uint64
}

// evaluate is _evaluate_patterns; the result may repeat hosts.
func (m *matcher) evaluate(terms []string) ([]*host, error) {
	var regular, intersect, exclude []string
	for _, t := range terms {
		switch t[0] {
		case '&':
			intersect = append(intersect, t)
		case '!':
			exclude = append(exclude, t)
		default:
			regular = append(regular, t)
		}
	}
	if len(regular) == 0 {
		regular = []string{"all"}
	}
	// in marks the hosts so far, kept as hosts grows, so that each term
	// costs what it selects, not what the terms before it selected: a
	// pattern of thousands of terms stays linear.
	in := m.newSet()
	var hosts []*host
	terms = append(regular, intersect...)
	for i, p := range terms {
		if h, ok := m.inv.hostByName[p]; ok {
			hosts = append(hosts, h)
			in.add(h)
			continue
		}
		that, err := m.matchOne(p)
		if err != nil {
			return nil, err
		}
		if p[0] == '&' {
			set := m.scratchSet(that)
			hosts = filter(hosts, func(h *host) bool {
				if set.has(h) {
					return true
				}
				in.remove(h)
				return false
			})
			set.clear(that)
			continue
		}
		if len(hosts) == 0 {
			// The first term's hosts as they are: sortedNames removes
			// what one term selects twice (a host in two of its groups),
			// and only a term after it needs them marked.
			hosts = that
			if i < len(terms)-1 {
				for _, h := range that {
					in.add(h)
				}
			}
			continue
		}
		for _, h := range that {
			if !in.has(h) {
				hosts = append(hosts, h)
				in.add(h)
			}
		}
	}
	if len(exclude) == 0 {
		return hosts, nil
	}
	// The exclusions come last and each removes what it selects: removing
	// their union at once is the same, and one pass over the hosts however
	// many hosts they name.
	var excluded []*host
	for _, p := range exclude {
		that, err := m.matchOne(p)
		if err != nil {
			return nil, err
		}
		excluded = append(excluded, that...)
	}
	set := m.scratchSet(excluded)
	hosts = filter(hosts, func(h *host) bool { return !set.has(h) })
	set.clear(excluded)
	return hosts, nil
}

// hostBits is a set of hosts: a bit per inventory host, and the implicit
// localhost apart.
type hostBits struct {
	bits     []uint64
	implicit bool
}

func (m *matcher) newSet() *hostBits {
	return &hostBits{bits: make([]uint64, len(m.inv.hosts)/64+1)}
}

// scratchSet is the set of hs in the matcher's one scratch set, which
// clear empties again: one allocation per Match, however many terms.
func (m *matcher) scratchSet(hs []*host) *hostBits {
	if m.scratch == nil {
		m.scratch = m.newSet()
	}
	for _, h := range hs {
		m.scratch.add(h)
	}
	return m.scratch
}

func (s *hostBits) add(h *host) {
	if h.idx < 0 {
		s.implicit = true
		return
	}
	s.bits[h.idx>>6] |= 1 << (h.idx & 63)
}

func (s *hostBits) remove(h *host) {
	if h.idx < 0 {
		s.implicit = false
		return
	}
	s.bits[h.idx>>6] &^= 1 << (h.idx & 63)
}

// clear removes hs, which were all that the set held.
func (s *hostBits) clear(hs []*host) {
	for _, h := range hs {
		s.remove(h)
	}
}

func (s *hostBits) has(h *host) bool {
	if h.idx < 0 {
		return s.implicit
	}
	return s.bits[h.idx>>6]&(1<<(h.idx&63)) != 0
}

func filter(hs []*host, keep func(*host) bool) []*host {
	out := hs[:0]
	for _, h := range hs {
		if keep(h) {
			out = append(out, h)
		}
	}
	return out
}

// matchOne is _match_one_pattern: one term without its & or !.
func (m *matcher) matchOne(term string) ([]*host, error) {
	if term[0] == '&' || term[0] == '!' {
		term = term[1:]
	}
	if term == "" {
		return nil, exe.Errorf(exe.ErrInvalid, "pattern: empty term after '&' or '!'")
	}
	expr, start, end, hasSub := splitSubscript(term)
	hosts, err := m.enumerate(expr)
	if err != nil {
		return nil, err
	}
	if !hasSub || len(hosts) == 0 {
		return hosts, nil
	}
	// Python's slice and index semantics, with an inclusive end.
	n := len(hosts)
	if end != 0 {
		if end == -1 {
			end = n - 1
		}
		lo, hi := clamp(start, n), clamp(end+1, n)
		if lo >= hi {
			return nil, nil
		}
		return hosts[lo:hi], nil
	}
	if start < 0 {
		start += n
	}
	if start < 0 || start >= n {
		return nil, errOutOfRange
	}
	return hosts[start : start+1], nil
}

// errOutOfRange is a subscript past the term's hosts; Ansible's ad hoc
// command then selects no host at all.
var errOutOfRange = errors.New("pattern: subscript out of range")

func clamp(i, n int) int {
	if i < 0 {
		i += n
		if i < 0 {
			i = 0
		}
	}
	if i > n {
		i = n
	}
	return i
}

// splitSubscript is _split_subscript. A regex (~...) has none.
func splitSubscript(term string) (expr string, start, end int, ok bool) {
	if term[0] == '~' {
		return term, 0, 0, false
	}
	sm := subscriptRE.FindStringSubmatch(term)
	if sm == nil {
		return term, 0, 0, false
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			// Too many digits for an int: no host is that far.
			if strings.HasPrefix(s, "-") {
				return -1 << 40
			}
			return 1 << 40
		}
		return n
	}
	if sm[2] != "" {
		return sm[1], atoi(sm[2]), 0, true
	}
	end = -1
	if sm[5] != "" {
		end = atoi(sm[5])
	}
	return sm[1], atoi(sm[3]), end, true
}

// enumerate is _enumerate_matches: the hosts of every group the term
// matches, then, when no group matched or the term is a glob or regex, the
// hosts it matches by name; else the implicit localhost for its names.
func (m *matcher) enumerate(expr string) ([]*host, error) {
	inv := m.inv
	match, literal, err := compileTerm(expr)
	if err != nil {
		return nil, err
	}
	var results []*host
	matchedGroup := false
	if m.seen == nil {
		m.seen = make([]uint64, len(inv.hosts)/64+1)
	}
	seen := m.seen
	if literal {
		if g, ok := inv.groupByName[expr]; ok {
			matchedGroup = true
			results = inv.flatHosts(g, results, seen)
		}
	} else {
		for _, g := range inv.groups {
			if match(g.name) {
				matchedGroup = true
				results = inv.flatHosts(g, results, seen)
			}
		}
	}
	if !matchedGroup || expr[0] == '~' || strings.ContainsAny(expr, ".?*[") {
		if literal {
			if h, ok := inv.hostByName[expr]; ok {
				results = append(results, h)
			}
		} else {
			for _, h := range inv.hosts {
				if match(h.name) {
					results = append(results, h)
				}
			}
		}
	}
	if len(results) == 0 && localNames[expr] {
		results = append(results, m.localhost(expr))
	}
	return results, nil
}

// localhost is get_host for an unlisted localhost name: the first listed
// localhost-like host, else the implicit one.
func (m *matcher) localhost(name string) *host {
	if m.inv.localhost != nil {
		return m.inv.localhost
	}
	if m.implicit == nil {
		m.implicit = &host{name: name, idx: -1}
	}
	return m.implicit
}

// sortedNames de-duplicates and sorts without a sort: inventory hosts are
// marked and read back in name order.
func (m *matcher) sortedNames(hosts []*host) []string {
	inv := m.inv
	marked := make([]uint64, len(inv.hosts)/64+1)
	var implicit string
	count := 0
	for _, h := range hosts {
		if h.idx < 0 {
			implicit = h.name
			continue
		}
		if w, bit := h.idx>>6, uint64(1)<<(h.idx&63); marked[w]&bit == 0 {
			marked[w] |= bit
			count++
		}
	}
	out := make([]string, 0, count+1)
	if count == len(inv.hosts) {
		for _, h := range inv.sorted {
			out = append(out, h.name)
		}
	} else if count > 0 {
		for _, h := range inv.sorted {
			if marked[h.idx>>6]&(1<<(h.idx&63)) != 0 {
				out = append(out, h.name)
			}
		}
	}
	if implicit != "" {
		i := sort.SearchStrings(out, implicit)
		out = append(out, "")
		copy(out[i+1:], out[i:])
		out[i] = implicit
	}
	return out
}

// compileTerm makes a name matcher from a glob (Python's fnmatch, whole
// name) or a "~regex" (matched at the start). literal says the term has no
// glob character, so it matches only the name equal to it.
func compileTerm(term string) (match func(string) bool, literal bool, err error) {
	if term[0] == '~' {
		re, err := regexp.Compile(`^(?:` + term[1:] + `)`)
		if err != nil {
			return nil, false, exe.Errorf(exe.ErrInvalid, "pattern: invalid regular expression in %q: %v", term, err)
		}
		return re.MatchString, false, nil
	}
	if !strings.ContainsAny(term, "*?[") {
		return func(s string) bool { return s == term }, true, nil
	}
	// A plain prefix glob is the common case on large inventories.
	if i := strings.IndexAny(term, "*?["); term[i] == '*' && i == len(term)-1 {
		prefix := term[:i]
		return func(s string) bool { return strings.HasPrefix(s, prefix) }, false, nil
	}
	re, err := regexp.Compile(`^(?s:` + fnmatchTranslate(term) + `)\z`)
	if err != nil {
		return nil, false, exe.Errorf(exe.ErrInvalid, "pattern: invalid term %q", term)
	}
	return re.MatchString, false, nil
}

// fnmatchTranslate is Python 3.11's fnmatch.translate, for Go's regexp.
func fnmatchTranslate(pat string) string {
	var b strings.Builder
	i, n := 0, len(pat)
	for i < n {
		c := pat[i]
		i++
		switch c {
		case '*':
			for i < n && pat[i] == '*' {
				i++
			}
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i
			if j < n && pat[j] == '!' {
				j++
			}
			if j < n && pat[j] == ']' {
				j++
			}
			for j < n && pat[j] != ']' {
				j++
			}
			if j >= n {
				b.WriteString(`\[`)
				continue
			}
			stuff := classBody(pat, i, j)
			i = j + 1
			switch {
			case stuff == "":
				b.WriteString(`[^\x00-\x{10FFFF}]`) // an empty set matches nothing
			case stuff == "!":
				b.WriteString(".")
			default:
				if stuff[0] == '!' {
					stuff = "^" + stuff[1:]
				} else if stuff[0] == '^' || stuff[0] == '[' {
					stuff = `\` + stuff
				}
				b.WriteString("[" + stuff + "]")
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// classBody translates pat[i:j], the inside of a [...] set, dropping
// empty ranges (z-a) as Python does and escaping what Go's RE2 would read
// as syntax.
func classBody(pat string, i, j int) string {
	esc := func(s string) string {
		return strings.NewReplacer(`\`, `\\`, `-`, `\-`, `[`, `\[`, `]`, `\]`, `&`, `\&`, `~`, `\~`, `|`, `\|`).Replace(s)
	}
	if !strings.Contains(pat[i:j], "-") {
		return esc(pat[i:j])
	}
	var chunks []string
	k := i + 1
	if pat[i] == '!' {
		k = i + 2
	}
	for {
		idx := -1
		if k < j {
			idx = strings.IndexByte(pat[k:j], '-')
		}
		if idx < 0 {
			break
		}
		k += idx
		chunks = append(chunks, pat[i:k])
		i = k + 1
		k += 3
	}
	chunk := pat[i:j]
	if chunk != "" {
		chunks = append(chunks, chunk)
	} else {
		chunks[len(chunks)-1] += "-"
	}
	for k := len(chunks) - 1; k > 0; k-- {
		a, c := chunks[k-1], chunks[k]
		if a != "" && c != "" && a[len(a)-1] > c[0] {
			chunks[k-1] = a[:len(a)-1] + c[1:]
			chunks = append(chunks[:k], chunks[k+1:]...)
		}
	}
	parts := make([]string, len(chunks))
	for k, c := range chunks {
		parts[k] = esc(c)
	}
	return strings.Join(parts, "-")
}
