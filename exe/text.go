package exe

import (
	"strings"
	"unicode/utf8"
)

// ToValidUTF8 returns s with every byte that is not part of a well-formed
// UTF-8 sequence replaced by U+FFFD, one replacement per byte. Valid text
// is returned as it is, without a copy.
//
// Commands print bytes, but the HTTP API, gRPC (proto3 string fields) and
// the job stores carry text: without this, one Latin-1 byte in one host's
// output fails a whole operation. One U+FFFD per byte is what Ansible
// reports for the same output (it decodes with surrogateescape, one
// \udcXX per byte, which a JSON reader turns into U+FFFD) and what Go's
// encoding/json writes, so the same bytes read the same through every
// executor and every path.
func ToValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	// Each bad byte grows by two: U+FFFD is three bytes.
	b.Grow(len(s) + len(s)/2)
	start := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteRune(utf8.RuneError)
			start = i + 1
		}
		i += size
	}
	b.WriteString(s[start:])
	return b.String()
}

// TruncateUTF8 returns the longest prefix of s that is at most n bytes
// long and does not end inside a character: an output cap that falls
// within a multi-byte character drops that whole character instead of
// leaving a part of it (which would read as U+FFFD). Bytes that are not
// valid UTF-8 count as characters of one byte. A negative n is 0.
//
// To tell whether the cap cuts a character, s must hold the bytes that
// follow the cap (up to utf8.UTFMax-1 of them) when it has them.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	// The character that holds byte n, the first one dropped, starts at
	// most utf8.UTFMax-1 bytes before it.
	for i := n; i >= 0 && i > n-utf8.UTFMax; i-- {
		if !utf8.RuneStart(s[i]) {
			continue
		}
		if r, size := utf8.DecodeRuneInString(s[i:]); (r != utf8.RuneError || size > 1) && i+size > n {
			return s[:i]
		}
		break
	}
	return s[:n]
}

// ToValidUTF8 returns the event with every string it carries made valid
// UTF-8 by the package's ToValidUTF8: host, name, msg, stdout, stderr,
// and the keys and string values of Facts and Extra, nested maps and
// lists included. Exec and the maps are copied when something in them
// changes, never modified: the emitter may still hold them.
//
// exe.Perform applies it to every event an operation emits, and the plugin
// SDK to every event that crosses a process boundary, so executors need
// not; they may, to work with the text themselves.
func (e Event) ToValidUTF8() Event {
	e.Host, e.Name, e.Msg = ToValidUTF8(e.Host), ToValidUTF8(e.Name), ToValidUTF8(e.Msg)
	if e.Exec != nil {
		out, errOut := ToValidUTF8(e.Exec.Stdout), ToValidUTF8(e.Exec.Stderr)
		if out != e.Exec.Stdout || errOut != e.Exec.Stderr {
			e.Exec = &ExecResult{RTC: e.Exec.RTC, Stdout: out, Stderr: errOut}
		}
	}
	if v, changed := validValue(e.Facts); changed {
		e.Facts = v.(map[string]any)
	}
	if v, changed := validValue(e.Extra); changed {
		e.Extra = v.(map[string]any)
	}
	return e
}

// validValue is ToValidUTF8 for the values of Facts and Extra: the shapes
// JSON decodes into, and the string maps and lists executors build. Other
// types are left to encoding/json, which writes valid UTF-8 itself. It
// reports whether anything changed; only then is the result a copy. Two
// keys that differ only in invalid bytes become one.
func validValue(v any) (any, bool) {
	switch t := v.(type) {
	case string:
		s := ToValidUTF8(t)
		// A replaced byte makes the string longer: U+FFFD is three bytes.
		return s, len(s) != len(t)
	case map[string]any:
		return validMap(t, validValue)
	case map[string]string:
		return validMap(t, func(s string) (string, bool) { vs, changed := validValue(s); return vs.(string), changed })
	case []any:
		return validSlice(t, validValue)
	case []string:
		return validSlice(t, func(s string) (string, bool) { vs, changed := validValue(s); return vs.(string), changed })
	}
	return v, false
}

func validMap[V any](m map[string]V, valid func(V) (V, bool)) (any, bool) {
	var out map[string]V
	for k, x := range m {
		vk, kChanged := validValue(k)
		vx, xChanged := valid(x)
		if !kChanged && !xChanged {
			continue
		}
		if out == nil {
			out = make(map[string]V, len(m))
			for k2, x2 := range m {
				out[k2] = x2
			}
		}
		delete(out, k)
		out[vk.(string)] = vx
	}
	if out == nil {
		return m, false
	}
	return out, true
}

func validSlice[V any](l []V, valid func(V) (V, bool)) (any, bool) {
	var out []V
	for i, x := range l {
		vx, changed := valid(x)
		if !changed {
			continue
		}
		if out == nil {
			out = append([]V(nil), l...)
		}
		out[i] = vx
	}
	if out == nil {
		return l, false
	}
	return out, true
}

// CapUTF8 is s as valid UTF-8 (ToValidUTF8) cut to at most n bytes without
// cutting a character in two (TruncateUTF8), and whether it was cut. The
// conversion comes first: each invalid byte becomes a 3-byte U+FFFD, so a
// cap applied to the raw bytes could give a field three times its size.
func CapUTF8(s string, n int) (string, bool) {
	s = ToValidUTF8(s)
	if len(s) <= n {
		return s, false
	}
	return TruncateUTF8(s, n), true
}
