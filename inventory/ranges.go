package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// maxExpansion bounds what one host line may expand to, so that a typo such
// as web[1:9999999] is an error rather than an out-of-memory.
const maxExpansion = 100000

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandHost expands the ranges of a host word and splits off a ":port"
// suffix: "web[01:03]:2222" gives web01, web02, web03 and port 2222.
func expandHost(word string) ([]string, string, error) {
	port := ""
	// A ':' is a port separator only outside every [...] range.
	if i := strings.LastIndexByte(word, ':'); i >= 0 && strings.Count(word[:i], "[") == strings.Count(word[:i], "]") {
		p := word[i+1:]
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Errorf("host %q: %q is not a port", word, p)
		}
		word, port = word[:i], p
	}
	names, err := expand(word)
	return names, port, err
}

// expand expands the first [begin:end(:step)] of word, then the rest.
func expand(word string) ([]string, error) {
	open := strings.IndexByte(word, '[')
	if open < 0 {
		if strings.IndexByte(word, ']') >= 0 {
			return nil, fmt.Errorf("host %q: unbalanced ']'", word)
		}
		return []string{word}, nil
	}
	closeAt := strings.IndexByte(word[open:], ']')
	if closeAt < 0 {
		return nil, fmt.Errorf("host %q: unterminated range", word)
	}
	head, spec, tail := word[:open], word[open+1:open+closeAt], word[open+closeAt+1:]
	seq, err := rangeSeq(spec)
	if err != nil {
		return nil, fmt.Errorf("host %q: %v", word, err)
	}
	rest, err := expand(tail)
	if err != nil {
		return nil, err
	}
	if len(seq)*len(rest) > maxExpansion {
		return nil, fmt.Errorf("host %q expands to more than %d hosts", word, maxExpansion)
	}
	out := make([]string, 0, len(seq)*len(rest))
	for _, s := range seq {
		for _, r := range rest {
			out = append(out, head+s+r)
		}
	}
	return out, nil
}

// rangeSeq expands "01:10", "a:f" or "0:10:2" as Ansible does: a begin with
// a leading zero pads every number to its width.
func rangeSeq(spec string) ([]string, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return nil, fmt.Errorf("range [%s] must be begin:end or begin:end:step", spec)
	}
	beg, end, step := parts[0], parts[1], 1
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("range [%s] has no end", spec)
	}
	if len(parts) == 3 {
		s, err := strconv.Atoi(parts[2])
		if err != nil || s < 1 {
			return nil, fmt.Errorf("range [%s]: step must be a positive number", spec)
		}
		step = s
	}
	if len(beg) == 1 && len(end) == 1 && strings.Contains(letters, beg) && strings.Contains(letters, end) &&
		!(beg[0] >= '0' && beg[0] <= '9') {
		bi, ei := strings.IndexByte(letters, beg[0]), strings.IndexByte(letters, end[0])
		if bi > ei {
			return nil, fmt.Errorf("range [%s]: begin is after end", spec)
		}
		var out []string
		for i := bi; i <= ei; i += step {
			out = append(out, string(letters[i]))
		}
		return out, nil
	}
	b, err1 := strconv.Atoi(beg)
	e, err2 := strconv.Atoi(end)
	if err1 != nil || err2 != nil || b < 0 || e < 0 {
		return nil, fmt.Errorf("range [%s] must be numbers or single letters", spec)
	}
	if b > e {
		return nil, fmt.Errorf("range [%s]: begin is after end", spec)
	}
	if (e-b)/step+1 > maxExpansion {
		return nil, fmt.Errorf("range [%s] is larger than %d", spec, maxExpansion)
	}
	width := 0
	if beg[0] == '0' && len(beg) > 1 {
		if len(beg) != len(end) {
			return nil, fmt.Errorf("range [%s]: zero-padded begin and end must have the same width", spec)
		}
		width = len(beg)
	}
	var out []string
	for i := b; i <= e; i += step {
		out = append(out, fmt.Sprintf("%0*d", width, i))
	}
	return out, nil
}
