package inventory

import (
	"errors"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The expressions of Ansible's parse_address
// (ansible/parsing/utils/addresses.py), with the same ranges allowed in
// place of address parts.
const (
	numericRange  = `\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`
	hexRange      = `\[(?:[0-9a-fA-F]+:[0-9a-fA-F]+)(?::[0-9]+)?\]`
	ipv6Component = `(?:[0-9a-fA-F]{1,4}|` + hexRange + `)`
	ipv4Component = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|` + numericRange + `)`
)

var (
	bracketedHostPortRE = regexp.MustCompile(`^\[(.+)\]:([0-9]+)$`)
	hostPortRE          = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`)
	ipv4RE              = regexp.MustCompile(`^(?:` + ipv4Component + `\.){3}` + ipv4Component + `$`)
	// Ansible's IPv6 expression anchors only its first alternative with ^
	// and its last with $; re.match anchors the others at the start only.
	// So any text starting like an IPv6 address passes ("fe80::1%eth0",
	// "2001:db8::*"), which decides how patterns split; exed does the same.
	ipv6RE = regexp.MustCompile(`(?i)^(?:` + strings.NewReplacer("{0}", ipv6Component).Replace(
		`(?:{0}:){7}{0}|`+
			`(?:{0}:){1,6}:|`+
			`(?:{0}:)(?::{0}){1,6}|`+
			`(?:{0}:){2}(?::{0}){1,5}|`+
			`(?:{0}:){3}(?::{0}){1,4}|`+
			`(?:{0}:){4}(?::{0}){1,3}|`+
			`(?:{0}:){5}(?::{0}){1,2}|`+
			`(?:{0}:){6}(?::{0})|`+
			`:(?::{0}){1,6}|`+
			`{0}?::|`+
			`(?:0:){6}(?:{0}\.){3}{0}|`+
			`::(?:ffff:)?(?:{0}\.){3}{0}|`+
			`(?:0:){5}ffff:(?:{0}\.){3}{0}$`) + `)`)
	// A label's range: one letter to one letter, or numbers.
	alnumRangeRE = regexp.MustCompile(`^\[(?:[a-zA-Z]:[a-zA-Z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`)
)

var errNotAddress = errors.New("not a valid network hostname")

// parseAddress splits a host identifier into host and port as Ansible's
// parse_address does: a hostname, an IPv4 or an IPv6 address, each
// possibly with [x:y] ranges when allowRanges, and an optional :port (an
// IPv6 address needs brackets for one: [::1]:2222). The port is 0 when there
// is none. It fails for anything else, e.g. "bad/name", which Ansible then
// takes as a name as written.
func parseAddress(address string, allowRanges bool) (string, int, error) {
	port := 0
	// As in Ansible both forms are tried in turn, the second on what the
	// first left.
	for _, re := range []*regexp.Regexp{bracketedHostPortRE, hostPortRE} {
		if m := re.FindStringSubmatch(address); m != nil {
			p, err := strconv.Atoi(m[2])
			if err != nil {
				return "", 0, errNotAddress
			}
			address, port = m[1], p
		}
	}
	if !ipv4RE.MatchString(address) && !ipv6RE.MatchString(address) && !isHostnamePattern(address) {
		return "", 0, errNotAddress
	}
	if !allowRanges && strings.Contains(address, "[") {
		return "", 0, errors.New("detected range in host but was asked to ignore ranges")
	}
	return address, port, nil
}

// isHostnamePattern is Ansible's hostname expression: labels separated by
// dots, each made of word characters, '-' and letter or number ranges,
// starting with a word character or a range and not ending with '-' or '_'.
func isHostnamePattern(s string) bool {
	if s == "" {
		return false
	}
	for _, label := range splitLabels(s) {
		if label == "" {
			return false
		}
		i, last := 0, rune(0)
		for i < len(label) {
			if label[i] == '[' {
				m := alnumRangeRE.FindString(label[i:])
				if m == "" {
					return false
				}
				i += len(m)
				last = ']'
				continue
			}
			r, n := decodeRune(label[i:])
			if !isWordRune(r) && (r != '-' || i == 0) {
				return false
			}
			i += n
			last = r
		}
		if last == '-' || last == '_' {
			return false
		}
	}
	return true
}

// splitLabels splits on the dots outside ranges.
func splitLabels(s string) []string {
	var out []string
	start, depth := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// isWordRune is Python's \w for text: letters, digits and '_'.
func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r)
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// isIPv6 reports whether name is an IPv6 literal, with or without a zone
// (fe80::1%eth0).
func isIPv6(name string) bool {
	a, err := netip.ParseAddr(name)
	return err == nil && a.Is6()
}
