package inventory

import "errors"

// shlexSplit splits an INI host line into words exactly as Python's
// shlex.split(line, comments=True) does, which is what Ansible's INI
// inventory uses: POSIX quoting, a backslash escapes the next character
// (inside double quotes only \" and \\), and '#' starts a comment even
// inside a word (a=b#c gives "a=b"). A quoted empty string is a word.
func shlexSplit(s string) ([]string, error) {
	const (
		stWhite = iota
		stWord
		stSingle
		stDouble
		stEscape
	)
	var words []string
	var tok []rune
	state, escaped := stWhite, stWhite // escaped: the state an escape returns to
	quoted := false
	emit := func() {
		if len(tok) > 0 || quoted {
			words = append(words, string(tok))
		}
		tok, quoted = tok[:0:0], false
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch state {
		case stWhite, stWord:
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
				if state == stWord {
					emit()
				}
				state = stWhite
			case c == '#':
				// The rest of the line is a comment.
				for i < len(rs) && rs[i] != '\n' {
					i++
				}
				if state == stWord {
					emit()
				}
				state = stWhite
			case c == '\\':
				escaped, state = stWord, stEscape
			case c == '\'':
				state = stSingle
			case c == '"':
				state = stDouble
			default:
				tok = append(tok, c)
				state = stWord
			}
		case stSingle:
			quoted = true
			if c == '\'' {
				state = stWord
			} else {
				tok = append(tok, c)
			}
		case stDouble:
			quoted = true
			switch c {
			case '"':
				state = stWord
			case '\\':
				escaped, state = stDouble, stEscape
			default:
				tok = append(tok, c)
			}
		case stEscape:
			// Inside double quotes only the quote and the backslash itself
			// can be escaped; before anything else the backslash stays.
			if escaped == stDouble && c != '"' && c != '\\' {
				tok = append(tok, '\\')
			}
			tok = append(tok, c)
			state = escaped
		}
	}
	switch state {
	case stSingle, stDouble:
		return nil, errors.New("No closing quotation")
	case stEscape:
		return nil, errors.New("No escaped character")
	case stWord:
		emit()
	}
	return words, nil
}
