package sshnative

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPIDFilter(t *testing.T) {
	for name, tc := range map[string]struct {
		writes []string
		pid    int // 0: none reported
		passed string
	}{
		"marker first":           {writes: []string{pidMarker + "4242\nerr\n"}, pid: 4242, passed: "err\n"},
		"split across writes":    {writes: []string{"__exe_p", "id__=77", "\nout", "put"}, pid: 77, passed: "output"},
		"rc file noise before":   {writes: []string{"welcome\n", pidMarker + "9\n", "x"}, pid: 9, passed: "welcome\nx"},
		"no marker, no newline":  {writes: []string{"partial"}, passed: "partial"},
		"marker-like text later": {writes: []string{pidMarker + "5\n" + pidMarker + "6\n"}, pid: 5, passed: pidMarker + "6\n"},
		"not a pid":              {writes: []string{pidMarker + "x\n"}, passed: pidMarker + "x\n"},
		"too long without one":   {writes: []string{strings.Repeat("y", maxPIDScan+1), pidMarker + "3\n"}, passed: strings.Repeat("y", maxPIDScan+1) + pidMarker + "3\n"},
	} {
		t.Run(name, func(t *testing.T) {
			out := &capped{limit: 1 << 20}
			f := newPIDFilter(out)
			for _, w := range tc.writes {
				n, err := f.Write([]byte(w))
				assert.NoError(t, err)
				assert.Equal(t, len(w), n)
			}
			f.flush()
			assert.Equal(t, tc.passed, out.String())
			select {
			case pid := <-f.pid:
				assert.Equal(t, tc.pid, pid)
			default:
				assert.Zero(t, tc.pid, "no pid reported")
			}
		})
	}
}

func TestRemoteCommandQuotesEverything(t *testing.T) {
	c := command{script: `echo "$1"`, args: []string{`a'b $(x)`}, env: []string{"EXE_VAR_N=it's"}}
	line := remoteCommand(c, true)
	assert.Equal(t, "printf '"+pidMarker+"%d\\n' \"$$\" >&2\nexport EXE_VAR_N='it'\\''s'\nset -- 'a'\\''b $(x)'\neval 'echo \"$1\"'", line)
	assert.Equal(t, "exec /bin/sh -c "+shellQuote(line), remoteCommand(c, false))
	assert.Equal(t, "true", remoteCommand(command{script: "true", raw: true}, true))
}

func TestCappedNeverCutsACharacter(t *testing.T) {
	for name, tc := range map[string]struct {
		limit     int
		writes    []string
		want      string
		truncated bool
	}{
		"under the cap":               {limit: 10, writes: []string{"ééé"}, want: "ééé"},
		"exactly the cap":             {limit: 6, writes: []string{"ééé"}, want: "ééé"},
		"cap inside a character":      {limit: 5, writes: []string{"ééé"}, want: "éé", truncated: true},
		"cap on a boundary":           {limit: 4, writes: []string{"ééé"}, want: "éé", truncated: true},
		"character split over writes": {limit: 3, writes: []string{"ab\xe2", "\x82", "\xac!"}, want: "ab", truncated: true},
		"filled, then more":           {limit: 3, writes: []string{"ab\xe2", "\x82\xac"}, want: "ab", truncated: true},
		"four bytes":                  {limit: 2, writes: []string{"🎉"}, want: "", truncated: true},
		"not UTF-8 at the cap":        {limit: 4, writes: []string{"caf\xe9\xe9"}, want: "caf", truncated: true},
		"U+FFFD past the cap":         {limit: 6, writes: []string{"\xff\xff\xff"}, want: "\uFFFD\uFFFD", truncated: true},
		"U+FFFD up to the cap":        {limit: 6, writes: []string{"\xff\xff"}, want: "\uFFFD\uFFFD"},
		"not UTF-8 within":            {limit: 64, writes: []string{"caf\xe9\n"}, want: "caf\uFFFD\n"},
		"a partial last character":    {limit: 64, writes: []string{"ab\xe2\x82"}, want: "ab\uFFFD\uFFFD"},
	} {
		t.Run(name, func(t *testing.T) {
			c := &capped{limit: tc.limit}
			for _, w := range tc.writes {
				n, err := c.Write([]byte(w))
				assert.NoError(t, err)
				assert.Equal(t, len(w), n)
			}
			assert.Equal(t, tc.want, c.String())
			assert.Equal(t, tc.truncated, c.Truncated())
		})
	}
}
