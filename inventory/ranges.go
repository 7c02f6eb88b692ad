package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// maxExpansion bounds what one host word may expand to, so that a typo such
// as web[1:99999999] is an error rather than an out-of-memory. Ansible has
// no bound.
const maxExpansion = 1 << 20

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandHostPattern is Ansible's _expand_hostpattern: the port comes off
// with parseAddress (ranges allowed); when the word is no valid address it
// is kept whole, with no port, as Ansible does (ok is then false). Ranges
// are then expanded.
func expandHostPattern(word string) (names []string, port int, ok bool, err error) {
	pattern, port, perr := parseAddress(word, true)
	ok = perr == nil
	if !ok {
		pattern, port = word, 0
	}
	if !strings.Contains(pattern, "[") {
		return []string{pattern}, port, ok, nil
	}
	names, err = expandHostnameRange(pattern, 0)
	return names, port, ok, err
}

// expandHostnameRange is Ansible's expand_hostname_range: the first [...]
// is begin:end or begin:end:step, numeric (a begin with a leading zero pads
// to its width) or alphabetic (one letter each); the rest of the name is
// expanded in turn. A numeric range whose begin is after its end is empty,
// as in Ansible.
func expandHostnameRange(line string, total int) ([]string, error) {
	open := strings.IndexByte(line, '[')
	replaced := strings.Replace(line, "[", "|", 1)
	closeAt := strings.IndexByte(replaced, ']')
	if open >= 0 && closeAt < 0 {
		return nil, fmt.Errorf("host %q: unterminated range", line)
	}
	if open < 0 || closeAt < 0 || strings.Count(line, "|") > 0 {
		return nil, fmt.Errorf("host range in %q must be [begin:end] or [begin:end:step]", line)
	}
	first, second := open, closeAt
	if second < first {
		first, second = second, first
	}
	head, nrange, tail := line[:first], line[first+1:second], line[second+1:]
	bounds := strings.Split(nrange, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, fmt.Errorf("host range [%s] in %q must be begin:end or begin:end:step", nrange, line)
	}
	beg, end, step := bounds[0], bounds[1], "1"
	if len(bounds) == 3 {
		step = bounds[2]
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("host range [%s] in %q must specify an end value", nrange, line)
	}
	width := 0
	if beg[0] == '0' && len(beg) > 1 {
		width = len(beg)
		if width != len(end) {
			return nil, fmt.Errorf("host range [%s] in %q must have begin and end of equal length", nrange, line)
		}
	}
	var seq []string
	ib, ie := strings.Index(asciiLetters, beg), strings.Index(asciiLetters, end)
	st, stErr := pyInt(step)
	if ib >= 0 && ie >= 0 && stErr == nil && st > 0 {
		if ib > ie {
			return nil, fmt.Errorf("host range [%s] in %q must have begin <= end", nrange, line)
		}
		for i := ib; i <= ie; i += st {
			seq = append(seq, asciiLetters[i:i+1])
		}
	} else {
		b, err1 := pyInt(beg)
		e, err2 := pyInt(end)
		if err1 != nil || err2 != nil || stErr != nil || st == 0 {
			return nil, fmt.Errorf("host range [%s] in %q must be numbers or single letters", nrange, line)
		}
		// Python's range(b, e+1, st).
		stop := e + 1
		for i := b; st > 0 && i < stop || st < 0 && i > stop; i += st {
			if len(seq) >= maxExpansion {
				return nil, fmt.Errorf("host range [%s] in %q gives more than %d hosts", nrange, line, maxExpansion)
			}
			seq = append(seq, zfill(strconv.Itoa(i), width))
		}
	}
	out := []string{}
	for _, s := range seq {
		name := head + s + tail
		if strings.Contains(name, "[") {
			more, err := expandHostnameRange(name, total+len(out))
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		} else {
			out = append(out, name)
		}
		if total+len(out) > maxExpansion {
			return nil, fmt.Errorf("host %q expands to more than %d hosts", line, maxExpansion)
		}
	}
	return out, nil
}

// pyInt parses an integer as Python's int() does for text: blanks around,
// an optional sign, '_' between digits.
func pyInt(s string) (int, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "__") || strings.HasPrefix(strings.TrimLeft(s, "+-"), "_") || strings.HasSuffix(s, "_") {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(strings.ReplaceAll(s, "_", ""))
}

// zfill pads with zeros after any sign, as Python's str.zfill does.
func zfill(s string, width int) string {
	if len(s) >= width {
		return s
	}
	sign := ""
	if s[0] == '-' || s[0] == '+' {
		sign, s = s[:1], s[1:]
	}
	return sign + strings.Repeat("0", width-len(s)-len(sign)) + s
}
