package http

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// oddNames are strings encoding/json escapes, or could be thought to.
var oddNames = []string{
	"", "web01.example.com", `"quoted"`, `back\slash`, "\x00\x01\x1f\t\n\r\b\f", "\x7f",
	"<script>&amp;</script>", "é", "日本語", "\u2028\u2029", "\xff\xfe", "a\xc3", "[::1]:22",
	"fe80::1%eth0", "x/y?z=1#f", "\U0001F600", "a&b", "a>b", "a<b", `a"`, `a\`, "a\n", "a\x1f", "a\x80", "a\x7f",
}

// sameAsWriteJSON requires writeStrings to answer exactly as writeJSON
// (encoding/json) does for list.
func sameAsWriteJSON(t *testing.T, list []string) {
	t.Helper()
	want, got := httptest.NewRecorder(), httptest.NewRecorder()
	writeJSON(want, 200, list)
	writeStrings(got, 200, list)
	assert.Equal(t, want.Code, got.Code)
	assert.Equal(t, want.Header(), got.Header())
	assert.Equal(t, want.Body.String(), got.Body.String(), "%q", list)
}

// GET /target's list is written without encoding/json; byte for byte as
// it wrote it.
func TestWriteStringsIsWriteJSON(t *testing.T) {
	sameAsWriteJSON(t, nil)
	sameAsWriteJSON(t, []string{})
	for _, s := range oddNames {
		sameAsWriteJSON(t, []string{s})
		sameAsWriteJSON(t, []string{"a", s, "b"})
	}
	sameAsWriteJSON(t, oddNames)
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("node%06d.example.com", i)
	}
	sameAsWriteJSON(t, many)
}

func FuzzWriteStrings(f *testing.F) {
	for _, s := range oddNames {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Split on NUL into a list, so that lists of any length are tried.
		sameAsWriteJSON(t, strings.Split(s, "\x00"))
	})
}
