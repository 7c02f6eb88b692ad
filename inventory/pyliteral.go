package inventory

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// iniValue gives an INI inventory value its type as Ansible does: it is
// passed to Python's ast.literal_eval, and kept as the string it is when
// that fails. So 22 is a number, True a boolean, [1, 2] a list, "a b" (with
// its quotes) the string a b, and yes or /path the string as written.
func iniValue(s string) any {
	v, err := pyLiteral(s)
	if err != nil {
		return s
	}
	return v
}

var errNotLiteral = errors.New("not a Python literal")

// pyLiteral evaluates the Python literal in s as ast.literal_eval does:
// strings (with implicit concatenation), numbers (with one sign), True,
// False, None, tuples, lists, dicts and sets, with comments and blank space
// around tokens. Tuples and sets become []any, dicts map[string]any with
// their keys written as JSON writes them, integers int (or *big.Int beyond
// 64 bits), floats float64. Complex numbers and bytes are not values Ansible
// can use, so they are errors too.
func pyLiteral(s string) (any, error) {
	p := &pyParser{src: strings.TrimLeft(s, " \t")}
	if err := p.next(); err != nil {
		return nil, err
	}
	v, err := p.expr(true)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tkEOF {
		return nil, errNotLiteral
	}
	return v, nil
}

type tokKind int

const (
	tkEOF tokKind = iota
	tkString
	tkNumber
	tkName
	tkOp
)

type pyToken struct {
	kind tokKind
	text string // operator or name
	val  any    // string or number value
}

type pyParser struct {
	src   string
	pos   int
	tok   pyToken
	depth int
}

// next reads the next token, skipping blanks and a trailing comment.
func (p *pyParser) next() error {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == ' ' || c == '\t' || c == '\f' || c == '\n' || c == '\r' {
			p.pos++
			continue
		}
		if c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n' {
			p.pos += 2
			continue
		}
		if c == '#' {
			p.pos = len(p.src)
			break
		}
		break
	}
	if p.pos >= len(p.src) {
		p.tok = pyToken{kind: tkEOF}
		return nil
	}
	rest := p.src[p.pos:]
	c := rest[0]
	switch {
	case c == '\'' || c == '"':
		return p.str("")
	case c >= '0' && c <= '9' || c == '.' && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9':
		return p.number()
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= utf8.RuneSelf:
		i := 0
		for i < len(rest) {
			r, n := utf8.DecodeRuneInString(rest[i:])
			if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				break
			}
			i += n
		}
		if i == 0 {
			return errNotLiteral
		}
		name := rest[:i]
		if i < len(rest) && (rest[i] == '\'' || rest[i] == '"') && isStringPrefix(name) {
			p.pos += i
			return p.str(strings.ToLower(name))
		}
		p.pos += i
		p.tok = pyToken{kind: tkName, text: name}
		return nil
	case strings.ContainsRune("()[]{},:+-", rune(c)):
		p.pos++
		p.tok = pyToken{kind: tkOp, text: string(c)}
		return nil
	}
	return errNotLiteral
}

func isStringPrefix(s string) bool {
	switch strings.ToLower(s) {
	case "r", "u", "b", "br", "rb", "f", "fr", "rf":
		return true
	}
	return false
}

// str reads a string literal whose prefix (lower-cased) was already read.
func (p *pyParser) str(prefix string) error {
	if strings.Contains(prefix, "f") {
		return errNotLiteral // an f-string is an expression
	}
	// Bytes are text to Ansible, which writes b'x' as "x".
	raw := strings.Contains(prefix, "r")
	rest := p.src[p.pos:]
	q := rest[:1]
	if strings.HasPrefix(rest, q+q+q) {
		q = q + q + q
	}
	body := rest[len(q):]
	var b strings.Builder
	for i := 0; ; {
		if i >= len(body) {
			return errNotLiteral // unterminated
		}
		if strings.HasPrefix(body[i:], q) {
			p.pos += len(q) + i + len(q)
			break
		}
		c := body[i]
		if c == '\n' && len(q) == 1 {
			return errNotLiteral
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(body) {
			return errNotLiteral
		}
		if raw {
			// A raw string keeps the backslash, which still protects the
			// next character from ending the string.
			b.WriteString(body[i : i+2])
			i += 2
			continue
		}
		n, err := pyEscape(&b, body[i:])
		if err != nil {
			return err
		}
		i += n
	}
	p.tok = pyToken{kind: tkString, val: b.String()}
	return nil
}

// pyEscape writes the escape sequence at the start of s and returns its length.
func pyEscape(b *strings.Builder, s string) (int, error) {
	c := s[1]
	switch c {
	case '\n':
		return 2, nil
	case '\\', '\'', '"':
		b.WriteByte(c)
	case 'a':
		b.WriteByte('\a')
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'v':
		b.WriteByte('\v')
	case 'x', 'u', 'U':
		width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if len(s) < 2+width {
			return 0, errNotLiteral
		}
		n, err := strconv.ParseUint(s[2:2+width], 16, 32)
		if err != nil || n > unicode.MaxRune {
			return 0, errNotLiteral
		}
		b.WriteRune(rune(n))
		return 2 + width, nil
	case 'N':
		return 0, errNotLiteral // named characters: not worth a table
	default:
		if c >= '0' && c <= '7' {
			j := 1
			for j < 4 && j < len(s) && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(s[1:j], 8, 32)
			b.WriteRune(rune(n))
			return j, nil
		}
		// An unknown escape keeps its backslash.
		b.WriteByte('\\')
		b.WriteByte(c)
	}
	return 2, nil
}

// number reads an integer or float literal with Python 3's rules: a
// decimal integer may not start with 0 unless it is all zeros, and '_'
// may only separate digits.
func (p *pyParser) number() error {
	rest := p.src[p.pos:]
	i := 0
	isDigit := func(c byte, base int) bool {
		switch base {
		case 2:
			return c == '0' || c == '1'
		case 8:
			return c >= '0' && c <= '7'
		case 16:
			return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		}
		return c >= '0' && c <= '9'
	}
	// digits reads digits of base with single '_' between them.
	digits := func(base int) (string, bool) {
		start := i
		var b strings.Builder
		for i < len(rest) {
			if isDigit(rest[i], base) {
				b.WriteByte(rest[i])
				i++
			} else if rest[i] == '_' && i > start && i+1 < len(rest) && isDigit(rest[i+1], base) {
				i++
			} else {
				break
			}
		}
		return b.String(), i > start
	}
	finish := func(v any) error {
		if i < len(rest) {
			c := rest[i]
			if c == 'j' || c == 'J' || c == '_' || c == '.' || isDigit(c, 16) && c > '9' || c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' {
				return errNotLiteral
			}
		}
		p.pos += i
		p.tok = pyToken{kind: tkNumber, val: v}
		return nil
	}
	if len(rest) > 1 && rest[0] == '0' && strings.ContainsRune("xXoObB", rune(rest[1])) {
		base := map[byte]int{'x': 16, 'o': 8, 'b': 2}[rest[1]|0x20]
		i = 2
		if i < len(rest) && rest[i] == '_' {
			i++
		}
		d, ok := digits(base)
		if !ok {
			return errNotLiteral
		}
		return finish(bigToValue(d, base))
	}
	intPart, _ := digits(10)
	isFloat := false
	frac, exp := "", ""
	if i < len(rest) && rest[i] == '.' {
		isFloat = true
		i++
		if i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			frac, _ = digits(10)
		}
	}
	if i < len(rest) && (rest[i] == 'e' || rest[i] == 'E') {
		j := i + 1
		if j < len(rest) && (rest[j] == '+' || rest[j] == '-') {
			j++
		}
		if j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			sign := rest[i+1 : j]
			i = j
			e, _ := digits(10)
			exp = "e" + sign + e
			isFloat = true
		}
	}
	if isFloat {
		f, err := strconv.ParseFloat(intPart+"."+frac+exp, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return errNotLiteral
		}
		return finish(f)
	}
	if len(intPart) > 1 && intPart[0] == '0' && strings.Trim(intPart, "0") != "" {
		return errNotLiteral // 010 is a syntax error in Python 3
	}
	return finish(bigToValue(intPart, 10))
}

// bigToValue gives an integer as int, or *big.Int when it does not fit.
func bigToValue(digits string, base int) any {
	if n, err := strconv.ParseInt(digits, base, 64); err == nil {
		return int(n)
	}
	n, _ := new(big.Int).SetString(digits, base)
	return n
}

// expr reads a literal; at the top level and inside parentheses a bare
// comma-separated list is a tuple.
func (p *pyParser) expr(tupleOK bool) (any, error) {
	first, err := p.atom()
	if err != nil {
		return nil, err
	}
	if !tupleOK || p.tok.kind != tkOp || p.tok.text != "," {
		return first, nil
	}
	items := []any{first}
	for p.tok.kind == tkOp && p.tok.text == "," {
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.tok.kind == tkEOF || p.tok.kind == tkOp && p.tok.text == ")" {
			break
		}
		v, err := p.atom()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	return items, nil
}

func (p *pyParser) atom() (any, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 100 {
		return nil, errNotLiteral
	}
	t := p.tok
	switch t.kind {
	case tkString:
		s := t.val.(string)
		if err := p.next(); err != nil {
			return nil, err
		}
		for p.tok.kind == tkString { // "a" "b" is "ab"
			s += p.tok.val.(string)
			if err := p.next(); err != nil {
				return nil, err
			}
		}
		return s, nil
	case tkNumber:
		if err := p.next(); err != nil {
			return nil, err
		}
		return t.val, nil
	case tkName:
		var v any
		switch t.text {
		case "True":
			v = true
		case "False":
			v = false
		case "None":
			v = nil
		case "set":
			// set() is the one call literal_eval accepts.
			if err := p.next(); err != nil {
				return nil, err
			}
			if err := p.expectOp("("); err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return []any{}, nil
		default:
			return nil, errNotLiteral
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		return v, nil
	case tkOp:
		switch t.text {
		case "+", "-":
			if err := p.next(); err != nil {
				return nil, err
			}
			var v any
			switch {
			case p.tok.kind == tkNumber:
				v = p.tok.val
				if err := p.next(); err != nil {
					return nil, err
				}
			case p.tok.kind == tkOp && p.tok.text == "(":
				// -(1) is still a signed constant to Python.
				inner, err := p.atom()
				if err != nil {
					return nil, err
				}
				switch inner.(type) {
				case int, float64, *big.Int:
					v = inner
				default:
					return nil, errNotLiteral
				}
			default:
				return nil, errNotLiteral
			}
			if t.text == "+" {
				return v, nil
			}
			return negate(v), nil
		case "(":
			if err := p.next(); err != nil {
				return nil, err
			}
			if p.tok.kind == tkOp && p.tok.text == ")" {
				return []any{}, p.next()
			}
			v, err := p.expr(true)
			if err != nil {
				return nil, err
			}
			return v, p.expectOp(")")
		case "[":
			items, err := p.list("]")
			return items, err
		case "{":
			return p.dictOrSet()
		}
	}
	return nil, errNotLiteral
}

func negate(v any) any {
	switch n := v.(type) {
	case int:
		if n == math.MinInt {
			return new(big.Int).Neg(big.NewInt(int64(n)))
		}
		return -n
	case *big.Int:
		m := new(big.Int).Neg(n)
		if m.IsInt64() {
			return int(m.Int64())
		}
		return m
	case float64:
		return -n
	}
	return v
}

func (p *pyParser) expectOp(op string) error {
	if p.tok.kind != tkOp || p.tok.text != op {
		return errNotLiteral
	}
	return p.next()
}

// list reads items up to the closing bracket, after the opening one.
func (p *pyParser) list(closing string) ([]any, error) {
	if err := p.next(); err != nil {
		return nil, err
	}
	items := []any{}
	for !(p.tok.kind == tkOp && p.tok.text == closing) {
		v, err := p.atom()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		if p.tok.kind == tkOp && p.tok.text == "," {
			if err := p.next(); err != nil {
				return nil, err
			}
			continue
		}
		if !(p.tok.kind == tkOp && p.tok.text == closing) {
			return nil, errNotLiteral
		}
	}
	return items, p.next()
}

func (p *pyParser) dictOrSet() (any, error) {
	if err := p.next(); err != nil {
		return nil, err
	}
	m := map[string]any{}
	if p.tok.kind == tkOp && p.tok.text == "}" {
		return m, p.next()
	}
	first, err := p.atom()
	if err != nil {
		return nil, err
	}
	if !(p.tok.kind == tkOp && p.tok.text == ":") {
		// A set: {1, 2}.
		items := []any{first}
		for p.tok.kind == tkOp && p.tok.text == "," {
			if err := p.next(); err != nil {
				return nil, err
			}
			if p.tok.kind == tkOp && p.tok.text == "}" {
				break
			}
			v, err := p.atom()
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
		return items, p.expectOp("}")
	}
	key := first
	for {
		if err := p.expectOp(":"); err != nil {
			return nil, err
		}
		v, err := p.atom()
		if err != nil {
			return nil, err
		}
		k, ok := jsonKey(key)
		if !ok {
			return nil, errNotLiteral
		}
		m[k] = v
		if p.tok.kind == tkOp && p.tok.text == "}" {
			return m, p.next()
		}
		if err := p.expectOp(","); err != nil {
			return nil, err
		}
		if p.tok.kind == tkOp && p.tok.text == "}" {
			return m, p.next()
		}
		if key, err = p.atom(); err != nil {
			return nil, err
		}
	}
}

// jsonKey writes a mapping key as Python's json module does.
func jsonKey(k any) (string, bool) {
	switch v := k.(type) {
	case string:
		return v, true
	case nil:
		return "null", true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	case int:
		return strconv.Itoa(v), true
	case *big.Int:
		return v.String(), true
	case float64:
		return pyFloatRepr(v), true
	}
	return "", false
}

// pyFloatRepr writes a float as Python's repr does.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
