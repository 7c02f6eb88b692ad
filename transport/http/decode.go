package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
)

// errUnsupportedType and errTooLarge are decoding failures with their own
// status codes (415, 413); every other decoding failure is a 400.
var (
	errUnsupportedType = errors.New("Content-Type must be application/json")
	errTooLarge        = errors.New("request body is too large")
)

// parseBool reads a boolean query value: 1/true/True/yes or
// 0/false/False/no; an absent parameter is false.
func parseBool(q url.Values, name string) (bool, error) {
	vals, ok := q[name]
	if !ok {
		return false, nil
	}
	v := vals[len(vals)-1]
	switch v {
	case "1", "true", "True", "yes":
		return true, nil
	case "0", "false", "False", "no":
		return false, nil
	}
	return false, exe.Errorf(exe.ErrInvalid, "%s: %q is not a boolean (use 1/true/True/yes or 0/false/False/no)", name, v)
}

// singleValued are the query parameters that take one value; a second one
// would be silently ignored by url.Values.Get, so it is refused. target and
// targets are lists and may repeat.
var singleValued = []string{"pattern", "name", "state", "graceful", "cmd", "outputs", "follow", "detail", "from", "timeout", "forks"}

// checkQuery answers 400 for a query string that does not parse, before
// the handler reads it: url.ParseQuery drops a pair that holds an unencoded
// ';' or a bad %-escape, and the handler would then answer for a request
// without it ("cmd: a command is required") instead of naming the cause.
func checkQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := queryError(r.URL.RawQuery); err != nil {
			writeMessage(w, http.StatusBadRequest, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// queryError returns an ErrInvalid error naming the first pair of the raw
// query that url.ParseQuery would drop, or a single-valued parameter given
// more than once.
func queryError(raw string) error {
	if raw == "" {
		return nil // most requests: nothing to parse
	}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return exe.Errorf(exe.ErrInvalid, "query: unencoded \";\" in %q: encode it as %%3B (parameters are separated by \"&\")", clip(pair, 64))
		}
		key, value, _ := strings.Cut(pair, "=")
		for _, part := range []string{key, value} {
			if _, err := url.QueryUnescape(part); err != nil {
				return exe.Errorf(exe.ErrInvalid, "query: %v in %q: encode \"%%\" as %%25", err, clip(pair, 64))
			}
		}
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		// Not reached: every cause ParseQuery reports is named above.
		return exe.Errorf(exe.ErrInvalid, "query: %v", err)
	}
	for _, name := range singleValued {
		if len(q[name]) > 1 {
			return exe.Errorf(exe.ErrInvalid, "%s: given %d times; give it once", name, len(q[name]))
		}
	}
	return nil
}

// flexBool is a JSON boolean that also takes the seed clients' forms:
// 0/1 and the strings parseBool accepts.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case bool:
		*b = flexBool(t)
		return nil
	case float64:
		if t == 0 || t == 1 {
			*b = t == 1
			return nil
		}
	case string:
		got, err := parseBool(url.Values{"x": {t}}, "x")
		if err == nil {
			*b = flexBool(got)
			return nil
		}
	case nil:
		*b = false
		return nil
	}
	// flexBool only serves "graceful"; the decoder adds no field context to
	// a custom error, so the message names it.
	return exe.Errorf(exe.ErrInvalid, "graceful: must be a boolean")
}

// queryBounds reads the bounds every operation takes from the query as
// well as from a POST's body (API.md: "timeout ... body field or query"):
// timeout in seconds and forks. A POST that gives one both ways must give
// the same value; one that the body gives and the query does not keeps
// the body's.
func queryBounds(q url.Values, req *exe.Request) error {
	if v, ok := q["timeout"]; ok {
		secs, err := strconv.ParseFloat(v[0], 64)
		if err != nil {
			return exe.Errorf(exe.ErrInvalid, "timeout: %q is not a number of seconds", clip(v[0], 32))
		}
		d, err := exe.SecondsDuration(secs)
		if err != nil {
			return err
		}
		if req.Timeout != 0 && req.Timeout != d {
			return exe.Errorf(exe.ErrInvalid, "timeout: the body says %s seconds and the query %s: give it once", strconv.FormatFloat(req.Timeout.Seconds(), 'g', -1, 64), clip(v[0], 32))
		}
		req.Timeout = d
	}
	if v, ok := q["forks"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 {
			return exe.Errorf(exe.ErrInvalid, "forks: %q is not %s", clip(v[0], 32), forksType)
		}
		f := forksInt(float64(n))
		if req.Forks != 0 && req.Forks != f {
			return exe.Errorf(exe.ErrInvalid, "forks: the body says %d and the query %s: give it once", req.Forks, clip(v[0], 32))
		}
		req.Forks = f
	}
	return nil
}

// queryRequest builds a sync request from query parameters.
func queryRequest(op exe.Operate, q url.Values) (exe.Request, error) {
	req := exe.Request{Operate: op}
	req.Targets = append(append(req.Targets, q["target"]...), q["targets"]...)
	if len(req.Targets) == 0 {
		return req, exe.Errorf(exe.ErrInvalid, "target: at least one target host is required")
	}
	if err := queryBounds(q, &req); err != nil {
		return req, err
	}
	switch op {
	case exe.OpService:
		req.Service.Name = q.Get("name")
		st := q.Get("state")
		if st == "" {
			return req, exe.Errorf(exe.ErrInvalid, "state: required (0 started, 1 stopped, 2 restarted)")
		}
		n, err := strconv.Atoi(st)
		if err != nil {
			return req, exe.Errorf(exe.ErrInvalid, "state: %q is not 0, 1 or 2", st)
		}
		req.Service.State = exe.ServiceState(n)
		graceful, err := parseBool(q, "graceful")
		if err != nil {
			return req, err
		}
		req.Service.Graceful = graceful
	case exe.OpExecute:
		req.Execute.Cmd = q.Get("cmd")
	}
	return req, req.Validate()
}

// Bodies, one per operation, so that a field is type-checked only where it
// means something; unknown fields are ignored.
type (
	targetsBody struct {
		Targets *[]string `json:"targets"`
		Target  *[]string `json:"target"`  // the seed's documents use both names
		Timeout *float64  `json:"timeout"` // seconds; every operation takes it
		Forks   *float64  `json:"forks"`   // hosts at once; tasks refuse it
	}
	serviceBody struct {
		targetsBody
		Name     string   `json:"name"`
		State    *int     `json:"state"`
		Graceful flexBool `json:"graceful"`
	}
	executeBody struct {
		targetsBody
		Cmd string `json:"cmd"`
	}
	deployBody struct {
		targetsBody
		Role      string         `json:"role"`
		Partial   []string       `json:"partial"`
		ExtraVars map[string]any `json:"extra_vars"`
	}
	taskBody struct {
		targetsBody
		TaskName string         `json:"taskname"`
		TaskType string         `json:"tasktype"`
		TaskOpts map[string]any `json:"taskopts"`
	}
)

func (t targetsBody) targets() []string {
	switch {
	case t.Targets != nil:
		return *t.Targets
	case t.Target != nil:
		return *t.Target
	}
	return nil
}

// fieldTypes names the expected type of each field in error messages.
var fieldTypes = map[string]string{
	"targets": "a list of host names", "target": "a list of host names",
	"name": "a string", "state": "an integer (0, 1 or 2)", "graceful": "a boolean",
	"cmd": "a string", "role": "a string", "partial": "a list of strings", "extra_vars": "an object",
	"taskname": "a string", "tasktype": "a string", "taskopts": "an object",
	"timeout": "a number of seconds", "forks": forksType,
}

// forksType is what "forks" must be, in error messages.
const forksType = "a positive integer (hosts at once; 0 or absent: the server's concurrency)"

// forksInt converts a whole forks value (an int64, as the OpenAPI
// document's integers are) to an int; a value past what an int32 holds is
// taken as that much, since any value above the server's concurrency is
// lowered to it. A negative value stays negative, for Request.Validate to
// refuse.
func forksInt(f float64) int {
	return int(min(max(f, math.MinInt32), math.MaxInt32))
}

// decodeBody builds an async request from a JSON body.
func decodeBody(op exe.Operate, contentType string, body io.Reader) (exe.Request, error) {
	req := exe.Request{Operate: op}
	if contentType != "" && contentType != "application/json" {
		mt, params, err := mime.ParseMediaType(contentType)
		if err != nil || mt != "application/json" {
			return req, errUnsupportedType
		}
		// JSON is UTF-8 (RFC 8259); a body that says otherwise would be
		// read as something else than its sender wrote.
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return req, fmt.Errorf("%w in UTF-8, not charset %q", errUnsupportedType, clip(cs, 32))
		}
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return req, errTooLarge
		}
		return req, exe.Errorf(exe.ErrInvalid, "could not read the request body")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return req, exe.Errorf(exe.ErrInvalid, "request body must be a JSON object")
	}
	// encoding/json would replace each invalid byte with U+FFFD: a command
	// would run with other bytes than were sent.
	if !utf8.Valid(raw) {
		return req, exe.Errorf(exe.ErrInvalid, "request body is not valid UTF-8 (at byte %d)", invalidUTF8At(raw))
	}
	var (
		dst     any
		targets *targetsBody
	)
	var (
		sb serviceBody
		eb executeBody
		db deployBody
		tb taskBody
		pb targetsBody
	)
	switch op {
	case exe.OpService:
		dst, targets = &sb, &sb.targetsBody
	case exe.OpExecute:
		dst, targets = &eb, &eb.targetsBody
	case exe.OpDeploy:
		dst, targets = &db, &db.targetsBody
	case exe.OpTask:
		dst, targets = &tb, &tb.targetsBody
	default:
		dst, targets = &pb, &pb
	}
	if err := decodeExact(raw, dst); err != nil {
		return req, err
	}
	req.Targets = targets.targets()
	if targets.Timeout != nil {
		if req.Timeout, err = exe.SecondsDuration(*targets.Timeout); err != nil {
			return req, err
		}
	}
	if f := targets.Forks; f != nil {
		if *f != math.Trunc(*f) || math.Abs(*f) >= math.MaxInt64 {
			return req, exe.Errorf(exe.ErrInvalid, "forks: %g is not %s", *f, forksType)
		}
		req.Forks = forksInt(*f)
	}
	switch op {
	case exe.OpService:
		if sb.State == nil {
			return req, exe.Errorf(exe.ErrInvalid, "state: required (0 started, 1 stopped, 2 restarted)")
		}
		req.Service = exe.ServiceArgs{Name: sb.Name, State: exe.ServiceState(*sb.State), Graceful: bool(sb.Graceful)}
	case exe.OpExecute:
		req.Execute = exe.ExecuteArgs{Cmd: eb.Cmd}
	case exe.OpDeploy:
		req.Deploy = exe.DeployArgs{Role: db.Role, Partial: db.Partial, ExtraVars: db.ExtraVars}
	case exe.OpTask:
		req.Task = exe.TaskArgs{Name: tb.TaskName, Type: tb.TaskType, Options: tb.TaskOpts}
	}
	return req, req.Validate()
}

// decodeExact decodes the JSON object raw (trimmed) into dst, one of the
// body structs, by exact field names: encoding/json matches names without
// regard to case ("CMD" would set cmd) and lets a repeated name override
// the first, so a body could mean something other than what a reader of
// it sees. Here a member whose name is not exactly a field name is unknown
// and ignored, as API.md says of unknown fields, and a name repeated in any
// object of the body, nested ones included, is a 400.
func decodeExact(raw []byte, dst any) error {
	// Most bodies are plain: one pass of encoding/json decodes them as the
	// walk below does, at a fraction of its cost (four passes, a token and
	// a map entry per member). A plain body that does not decode gets the
	// walk's error.
	if plainBody(raw) {
		if json.Unmarshal(raw, dst) == nil {
			return nil
		}
		reflect.ValueOf(dst).Elem().SetZero()
	}
	return decodeMembers(raw, dst)
}

// Bounds of what plainBody looks at: past them a body takes the full walk.
const (
	plainMaxDepth   = 16
	plainMaxMembers = 16
)

// plainBody reports whether raw (trimmed, valid UTF-8) is a body that
// json.Unmarshal decodes into a body struct exactly as decodeMembers does,
// if it is valid JSON (json.Unmarshal checks that): it has no backslash at all
// (so no escapes: every name compares as written and no string holds a
// lone surrogate), every member of the object is named exactly as a
// field, and no object names a member twice. It answers false for many
// bodies decodeMembers takes (an unknown member, an escape); never true
// for one that decodeMembers refuses for its names or strings.
func plainBody(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') >= 0 || len(raw) == 0 || raw[0] != '{' {
		return false
	}
	end, ok := plainValue(raw, 0, 0)
	return ok && skipSpace(raw, end) == len(raw)
}

// plainValue scans the JSON value at raw[i:] (no escapes in it) and
// returns the offset after it; ok is false for anything plainBody does
// not vouch for. depth 0 is the body object, whose names must be fields.
func plainValue(raw []byte, i, depth int) (end int, ok bool) {
	i = skipSpace(raw, i)
	if i >= len(raw) {
		return i, false
	}
	switch raw[i] {
	case '"':
		j := bytes.IndexByte(raw[i+1:], '"')
		return i + 2 + j, j >= 0
	case '[':
		if depth >= plainMaxDepth {
			return i, false
		}
		i = skipSpace(raw, i+1)
		if i < len(raw) && raw[i] == ']' {
			return i + 1, true
		}
		for {
			if i, ok = plainValue(raw, i, depth+1); !ok {
				return i, false
			}
			var end bool
			if i, end, ok = plainNext(raw, i, ']'); !ok || end {
				return i, ok
			}
		}
	case '{':
		if depth >= plainMaxDepth {
			return i, false
		}
		var names [plainMaxMembers][]byte
		n := 0
		i = skipSpace(raw, i+1)
		if i < len(raw) && raw[i] == '}' {
			return i + 1, true
		}
		for {
			i = skipSpace(raw, i)
			if i >= len(raw) || raw[i] != '"' || n == plainMaxMembers {
				return i, false
			}
			j := bytes.IndexByte(raw[i+1:], '"')
			if j < 0 {
				return i, false
			}
			name := raw[i+1 : i+1+j]
			if _, field := fieldTypes[string(name)]; depth == 0 && !field {
				return i, false
			}
			for _, seen := range names[:n] {
				if bytes.Equal(seen, name) {
					return i, false
				}
			}
			names[n] = name
			n++
			i = skipSpace(raw, i+2+j)
			if i >= len(raw) || raw[i] != ':' {
				return i, false
			}
			if i, ok = plainValue(raw, i+1, depth+1); !ok {
				return i, false
			}
			var end bool
			if i, end, ok = plainNext(raw, i, '}'); !ok || end {
				return i, ok
			}
		}
	}
	// A number, true, false or null: json.Unmarshal checks which.
	for i < len(raw) && !strings.ContainsRune(",]} \t\r\n", rune(raw[i])) {
		i++
	}
	return i, true
}

// skipSpace returns the offset of the first byte at or after i that is
// not JSON whitespace.
func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\r' || raw[i] == '\n') {
		i++
	}
	return i
}

// decodeMembers is decodeExact for every body: it decodes the members,
// checks every name and string of the body, and decodes the members named
// exactly as fields.
func decodeMembers(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var members map[string]json.RawMessage
	if err := dec.Decode(&members); err != nil {
		return jsonError(err)
	}
	// More is false before a stray ']' or '}', so compare offsets: raw is
	// trimmed, and anything after the object is a second value or junk.
	if dec.InputOffset() != int64(len(raw)) {
		return exe.Errorf(exe.ErrInvalid, "request body must hold a single JSON object")
	}
	if err := checkDuplicateKeys(raw); err != nil {
		return err
	}
	// Only members named exactly as a field reach the case-insensitive
	// decoder; field names differ from each other in more than case, so
	// none of them can then be matched to another field.
	known := make(map[string]json.RawMessage, len(members))
	for name, v := range members {
		if _, ok := fieldTypes[name]; ok {
			known[name] = v
		}
	}
	exact, err := json.Marshal(known)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "request body is not valid JSON: %s", err)
	}
	if err := json.Unmarshal(exact, dst); err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonFrame is an open object or array while checkDuplicateKeys walks a
// document.
type jsonFrame struct {
	path    string // "" for the body, else "extra_vars", "extra_vars.a[2]"...
	object  bool
	keys    map[string]bool // object: names seen so far
	key     string          // object: the member being read
	wantKey bool            // object: the next token is a name or '}'
	index   int             // array: the element being read
}

// checkDuplicateKeys walks valid JSON token by token and returns a 400
// naming the first name that occurs twice in one object, with the path of
// that object, or the first string that holds a lone UTF-16 surrogate
// escape ("\ud800"), with its path: encoding/json would replace it with
// U+FFFD, and a command would run with other text than was sent.
func checkDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers are only skipped: none may fail to convert
	var stack []*jsonFrame
	top := func() *jsonFrame {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	valueDone := func(f *jsonFrame) {
		switch {
		case f == nil:
		case f.object:
			f.wantKey = true
		default:
			f.index++
		}
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return jsonError(err)
		}
		f := top()
		if _, ok := tok.(string); ok {
			if u, bad := loneSurrogate(raw[start:dec.InputOffset()]); bad {
				where := "request body"
				switch {
				case f == nil:
				case f.object && f.wantKey && f.path == "":
					where = "a key of the request body"
				case f.object && f.wantKey:
					where = f.path + ": a key"
				case f.object && f.path == "":
					where = f.key
				case f.object:
					where = f.path + "." + f.key
				default:
					where = f.path + "[" + strconv.Itoa(f.index) + "]"
				}
				return exe.Errorf(exe.ErrInvalid, "%s: \\u%04x is a lone UTF-16 surrogate, not a character", clip(where, 128), u)
			}
		}
		if f != nil && f.object && f.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueDone(top())
				continue
			}
			name, _ := tok.(string)
			if f.keys[name] {
				if f.path == "" {
					return exe.Errorf(exe.ErrInvalid, "duplicate key %q in the request body", clip(name, 64))
				}
				return exe.Errorf(exe.ErrInvalid, "%s: duplicate key %q", clip(f.path, 128), clip(name, 64))
			}
			f.keys[name], f.key, f.wantKey = true, name, false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			path := ""
			switch {
			case f == nil:
			case f.object && f.path == "":
				path = f.key
			case f.object:
				path = f.path + "." + f.key
			default:
				path = f.path + "[" + strconv.Itoa(f.index) + "]"
			}
			obj := tok == json.Delim('{')
			nf := &jsonFrame{path: path, object: obj, wantKey: obj}
			if obj {
				nf.keys = map[string]bool{}
			}
			stack = append(stack, nf)
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			valueDone(top())
		default:
			valueDone(f)
		}
	}
}

// loneSurrogate finds the first \uXXXX escape in the JSON text b that is
// a UTF-16 surrogate not paired as RFC 8259 requires (a high one followed
// by an escaped low one).
func loneSurrogate(b []byte) (rune, bool) {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++ // a two-character escape, "\\" among them
			continue
		}
		u, ok := hex4(i)
		if !ok {
			continue
		}
		switch {
		case u >= 0xD800 && u < 0xDC00:
			if low, ok := hex4(i + 6); ok && low >= 0xDC00 && low <= 0xDFFF {
				i += 11
				continue
			}
			return u, true
		case u >= 0xDC00 && u <= 0xDFFF:
			return u, true
		}
		i += 5
	}
	return 0, false
}

// invalidUTF8At is the offset of the first byte of b that is not part of
// a valid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// clip shortens s to at most n bytes for a message, never inside a
// character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// jsonError turns a decoding error into a 400 that names the field.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, exe.ErrInvalid):
		return err
	case errors.As(err, &typeErr):
		// Field is a dotted path that also names embedded Go structs
		// ("targetsBody.targets"): the first JSON name in it is the
		// field.
		for _, field := range strings.Split(typeErr.Field, ".") {
			if want, ok := fieldTypes[field]; ok {
				return exe.Errorf(exe.ErrInvalid, "%s: must be %s", field, want)
			}
		}
		return exe.Errorf(exe.ErrInvalid, "a field has the wrong type")
	case errors.As(err, &syntaxErr):
		return exe.Errorf(exe.ErrInvalid, "request body is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return exe.Errorf(exe.ErrInvalid, "request body is truncated JSON")
	}
	return exe.Errorf(exe.ErrInvalid, "request body is not valid JSON: %s", fmt.Sprint(err))
}

// plainNext reads what follows an array's or object's item at raw[i]:
// a ',' (the index after it) or the closing byte (the index after it,
// and end); anything else is not plain.
func plainNext(raw []byte, i int, closing byte) (next int, end, ok bool) {
	i = skipSpace(raw, i)
	if i >= len(raw) {
		return i, false, false
	}
	switch raw[i] {
	case ',':
		return i + 1, false, true
	case closing:
		return i + 1, true, true
	}
	return i, false, false
}
