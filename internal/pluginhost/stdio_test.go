package pluginhost

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What a plugin's hclog logger writes reaches the server's log one line
// per record, in the server's format, with its level and key/values, however
// go-plugin cut it into chunks.
func TestLogLinesJSONServer(t *testing.T) {
	var out bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Name: "exed", Output: &out, JSONFormat: true, Level: hclog.Debug})
	w := newLogLines(log.Named("plugin").Named("sshnative"), "sshnative")
	plugin := `{"@level":"warn","@message":"unknown options ignored: frobs","@module":"sshnative","@timestamp":"2026-01-02T03:04:05.000000Z","count":3}` + "\n" +
		`{"@level":"debug","@message":"dial","@module":"sshnative.pool","@timestamp":"2026-01-02T03:04:05.000000Z","host":"web1","n":12345678901234567}` + "\n" +
		"[ERROR] a text line with a level\n" +
		"a bare line\n" +
		"\n" +
		`{"not":"hclog"}` + "\n"
	// Two lines in one chunk, a line cut in the middle, a chunk of one byte.
	for _, chunk := range []string{plugin[:200], plugin[200:201], plugin[201:260], plugin[260:]} {
		n, err := w.Write([]byte(chunk))
		require.NoError(t, err)
		assert.Equal(t, len(chunk), n)
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 5, out.String())
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "every line is JSON: %s", l)
		delete(m, "@timestamp")
		got = append(got, m)
	}
	assert.Equal(t, map[string]any{"@level": "warn", "@message": "unknown options ignored: frobs",
		"@module": "exed.plugin.sshnative", "count": float64(3)}, got[0])
	assert.Equal(t, map[string]any{"@level": "debug", "@message": "dial", "@module": "exed.plugin.sshnative.pool",
		"host": "web1", "n": 12345678901234567.0}, got[1])
	assert.Contains(t, lines[1], `"n":12345678901234567`, "integers stay exact")
	assert.Equal(t, "error", got[2]["@level"])
	assert.Contains(t, got[2]["@message"], "a text line with a level")
	assert.Equal(t, "info", got[3]["@level"])
	assert.Equal(t, "a bare line", got[3]["@message"])
	assert.Equal(t, `{"not":"hclog"}`, got[4]["@message"], "JSON that is not an hclog record is a line of text")
}

func TestLogLinesTextServer(t *testing.T) {
	var out bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Name: "exed", Output: &out, Level: hclog.Info})
	w := newLogLines(log.Named("plugin").Named("sshnative"), "sshnative")
	_, err := w.Write([]byte(`{"@level":"warn","@message":"host keys are NOT verified","@module":"sshnative","@timestamp":"2026-01-02T03:04:05.000000Z"}` + "\n" +
		`{"@level":"debug","@message":"below the level","@module":"sshnative"}` + "\n" +
		`{"@level":"error","@message":"journal","@module":"sshnative","error":"disk full"}` + "\n"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, out.String())
	assert.Regexp(t, `^\S+ \[WARN\]  exed\.plugin\.sshnative: host keys are NOT verified$`, lines[0])
	assert.Regexp(t, `^\S+ \[ERROR\] exed\.plugin\.sshnative: journal: error="disk full"$`, lines[1])
}

// A line longer than maxLogLine is logged in pieces rather than held.
func TestLogLinesLong(t *testing.T) {
	var out bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &out, JSONFormat: true})
	w := newLogLines(log, "x")
	_, err := w.Write(bytes.Repeat([]byte("a"), maxLogLine+10))
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out.String(), "\n"), "the first piece is out")
	_, err = w.Write([]byte("\n"))
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(out.String(), "\n"), "the rest ends with its line")
	assert.Len(t, w.buf, 0)
}
