package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
)

// FuzzDecodeRequest feeds arbitrary bodies to every operation's decoder: it
// must never panic, every refusal must be a 400/413/415 kind of error, and
// every accepted request must be valid, name only valid hosts, come from a
// body in which no object repeats a name, and hold exactly what the
// body's exactly-named members say (no case-insensitive match).
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"targets":["localhost"]}`,
		`{"targets":["a","b"],"name":"nginx","state":2,"graceful":"yes"}`,
		`{"target":["a"],"cmd":"echo hi"}`,
		`{"targets":["a"],"role":"web","partial":["t1"],"extra_vars":{"k":[1,{"x":null}]}}`,
		`{"targets":["a"],"tasktype":"rollingrestart","taskopts":{"batch":"25%"}}`,
		`{"targets":"a"}`, `[]`, `{`, `{"state":1e400}`, "\x00", `{"graceful":2}`,
		`{"targets":["a"],"CMD":"x","Name":"n","ROLE":"r","TaskType":"t","State":1}`,
		`{"targets":["a"],"cmd":"x","cmd":"y"}`, `{"targets":["a"],"extra_vars":{"k":1,"k":2}}`,
		`{"Targets":["b"],"targets":["a"],"TARGET":["c"]}`, `{"targets":["a"]}]`,
	} {
		for op := 0; op < 6; op++ {
			f.Add(uint8(op), seed)
		}
	}
	ops := []exe.Operate{exe.OpPing, exe.OpFacter, exe.OpService, exe.OpExecute, exe.OpDeploy, exe.OpTask}
	f.Fuzz(func(t *testing.T, opIdx uint8, body string) {
		op := ops[int(opIdx)%len(ops)]
		req, err := decodeBody(op, "application/json", strings.NewReader(body))
		if err != nil {
			if !errors.Is(err, exe.ErrInvalid) && !errors.Is(err, errTooLarge) && !errors.Is(err, errUnsupportedType) {
				t.Fatalf("%s %q: unexpected error kind: %v", op, body, err)
			}
			if err.Error() == "" {
				t.Fatal("an error needs a message")
			}
			return
		}
		if req.Operate != op || len(req.Targets) == 0 {
			t.Fatalf("%s %q: accepted without targets: %+v", op, body, req)
		}
		for _, h := range req.Targets {
			if !exe.ValidHostName(h) {
				t.Fatalf("%s %q: accepted invalid host %q", op, body, h)
			}
		}
		again := req
		if err := again.Validate(); err != nil {
			t.Fatalf("%s %q: accepted request does not validate: %v", op, body, err)
		}
		if name, dup := repeatedName(t, body); dup {
			t.Fatalf("%s %q: accepted with the name %q repeated", op, body, name)
		}
		checkExact(t, op, body, req)
	})
}

// repeatedName reports a name that occurs twice in one object of a valid
// JSON document, by decoding every object member by member.
func repeatedName(t *testing.T, doc string) (string, bool) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var walk func() (string, bool)
	walk = func() (string, bool) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%q: accepted, but not valid JSON: %v", doc, err)
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				name := k.(string)
				if seen[name] {
					return name, true
				}
				seen[name] = true
				if name, dup := walk(); dup {
					return name, true
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if name, dup := walk(); dup {
					return name, true
				}
			}
			_, _ = dec.Token()
		}
		return "", false
	}
	name, dup := walk()
	if dup {
		return name, true
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("%q: accepted with more than one value", doc)
	}
	return name, dup
}

// checkExact compares the request with the body's members looked up by
// their exact names (a Go map lookup is case-sensitive).
func checkExact(t *testing.T, op exe.Operate, body string, req exe.Request) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%q: accepted, but not an object: %v", body, err)
	}
	str := func(name string) string {
		var s string
		if raw, ok := m[name]; ok {
			_ = json.Unmarshal(raw, &s)
		}
		return s
	}
	var targets []string
	if raw, ok := m["targets"]; ok && !bytes.Equal(raw, []byte("null")) {
		_ = json.Unmarshal(raw, &targets)
	} else if raw, ok := m["target"]; ok {
		_ = json.Unmarshal(raw, &targets)
	}
	var uniq []string
	seen := map[string]bool{}
	for _, h := range targets {
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	if !reflect.DeepEqual(uniq, req.Targets) {
		t.Fatalf("%s %q: targets %q, but the body's exact members say %q", op, body, req.Targets, uniq)
	}
	var got, want string
	switch op {
	case exe.OpService:
		got, want = req.Service.Name, str("name")
	case exe.OpExecute:
		got, want = req.Execute.Cmd, str("cmd")
	case exe.OpDeploy:
		got, want = req.Deploy.Role, str("role")
	case exe.OpTask:
		got, want = req.Task.Type, str("tasktype")
	}
	if got != want {
		t.Fatalf("%s %q: decoded %q, but the exact member says %q", op, body, got, want)
	}
}

// FuzzPlainBody checks decodeExact's one-pass path against the full walk:
// for every body and every body struct, the same struct or the same error.
func FuzzPlainBody(f *testing.F) {
	for _, seed := range []string{
		`{"targets":["localhost"]}`, ` { "targets" : [ "a" , "b" ] , "forks" : 2 , "timeout" : 1.5 } `,
		`{"targets":["a"],"name":"nginx","state":2,"graceful":"yes"}`, `{"targets":["a"],"graceful":2}`,
		`{"targets":["a"],"role":"web","partial":["t1"],"extra_vars":{"k":[1,{"x":null}],"l":{}}}`,
		`{"targets":["a"],"extra_vars":{"k":1,"k":2}}`, `{"targets":["a"],"cmd":"x","cmd":"y"}`,
		`{"targets":["a"],"tasktype":"rollingrestart","taskopts":{"batch":"25%"}}`,
		`{"targets":"a"}`, `{"targets":["a"]}]`, `{"targets":["a"]} {}`, `{"targets":}`, `{"state":1e400}`,
		`{"targets":["a"],"CMD":"x"}`, `{"targets":["a\u0062"]}`, `{"targets":["\ud800"]}`, `{"targets":[tru]}`,
		`{"targets":["a"],"forks":-1}`, `{"targets":[["a"]]}`, `{"targets":["a"],"cmd":"a"b"}`,
	} {
		f.Add(seed)
	}
	dsts := []func() any{
		func() any { return &targetsBody{} }, func() any { return &serviceBody{} }, func() any { return &executeBody{} },
		func() any { return &deployBody{} }, func() any { return &taskBody{} },
	}
	f.Fuzz(func(t *testing.T, body string) {
		raw := bytes.TrimSpace([]byte(body))
		if len(raw) == 0 || raw[0] != '{' || !utf8.Valid(raw) {
			return // decodeBody refuses these before decodeExact
		}
		for _, mk := range dsts {
			fast, full := mk(), mk()
			errFast, errFull := decodeExact(raw, fast), decodeMembers(raw, full)
			if fmt.Sprint(errFast) != fmt.Sprint(errFull) {
				t.Fatalf("%T %q: plain: %v, full walk: %v", fast, body, errFast, errFull)
			}
			if errFull == nil && !reflect.DeepEqual(fast, full) {
				t.Fatalf("%T %q: plain: %+v, full walk: %+v", fast, body, fast, full)
			}
		}
	})
}

// Plain bodies, the usual ones, take the one-pass path; the others the
// full walk.
func TestPlainBody(t *testing.T) {
	for body, plain := range map[string]bool{
		`{"targets":["localhost"]}`: true, ` {"targets" : ["a","b"], "forks":2}`: true,
		`{"targets":["a"],"extra_vars":{"k":[1,{"x":null}]}}`: true,
		`{"targets":["a"],"unknown":1}`:                       false, `{"targets":["a"],"CMD":"x"}`: false,
		`{"targets":["a"],"targets":["b"]}`: false, `{"targets":["a"],"extra_vars":{"k":1,"k":2}}`: false,
		`{"targets":["a\u0062"]}`: false, `{"targets":["a"]} x`: false, `["a"]`: false,
	} {
		assert.Equal(t, plain, plainBody([]byte(strings.TrimSpace(body))), body)
	}
}

// BenchmarkDecodeBody decodes the body of a POST /ping, as bench/jobs.sh
// sends it.
func BenchmarkDecodeBody(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBody(exe.OpPing, "application/json", strings.NewReader(`{"targets":["localhost"]}`)); err != nil {
			b.Fatal(err)
		}
	}
}
