package pluginhost

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// maxLogLine bounds a line of a plugin's output held while its end has
// not come: longer ones are logged in pieces of this size.
const maxLogLine = 64 << 10

// logLines is where a plugin's stdout and stderr arrive once go-plugin has
// taken them over (the plugin's hclog loggers write there): in chunks that
// may end inside a line or hold several. Each line is logged on its own
// through the server's logger, so it comes out in the server's format
// (text or JSON) whatever the plugin wrote: an hclog JSON line keeps its
// level, message and key/values (its module, when it is not the plugin's
// own name, names a sub-logger), and any other line is logged as text,
// its level read from a "[WARN]"-style prefix, as go-plugin does with the
// lines it reads itself.
type logLines struct {
	log  hclog.Logger
	name string    // the plugin's name, which log already carries
	text io.Writer // hclog's standard writer on log: infers the level of text lines

	mu  sync.Mutex
	buf []byte // the start of a line whose end has not come
}

func newLogLines(log hclog.Logger, name string) *logLines {
	return &logLines{log: log, name: name, text: log.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})}
}

// Write logs every line p completes and keeps the rest for the next call.
func (w *logLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	rest := w.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		w.line(rest[:i])
		rest = rest[i+1:]
	}
	for len(rest) >= maxLogLine {
		w.line(rest[:maxLogLine])
		rest = rest[maxLogLine:]
	}
	// The rest moves to the start of the buffer, which so stays as big
	// as the longest chunk seen.
	w.buf = append(w.buf[:0], rest...)
	return len(p), nil
}

// line logs one line.
func (w *logLines) line(b []byte) {
	b = bytes.TrimRight(b, "\r")
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	if b[0] == '{' && w.json(b) {
		return
	}
	_, _ = w.text.Write(b)
}

// json logs an hclog JSON line; false when b is not one.
func (w *logLines) json(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // integers stay exact
	var m map[string]any
	if dec.Decode(&m) != nil {
		return false
	}
	msg, ok := m["@message"].(string)
	if !ok {
		return false
	}
	level := hclog.Info
	if s, ok := m["@level"].(string); ok {
		if l := hclog.LevelFromString(s); l != hclog.NoLevel {
			level = l
		}
	}
	log := w.log
	if mod, _ := m["@module"].(string); mod != "" && mod != w.name {
		log = log.Named(strings.TrimPrefix(mod, w.name+"."))
	}
	// The server's logger stamps its own time and module.
	for _, k := range []string{"@message", "@level", "@module", "@timestamp"} {
		delete(m, k)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, m[k])
	}
	log.Log(level, msg, args...)
	return true
}
