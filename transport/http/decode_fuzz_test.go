package http

import (
	"errors"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
)

// FuzzDecodeRequest feeds arbitrary bodies to every operation's decoder: it
// must never panic, every refusal must be a 400/413/415 kind of error, and
// every accepted request must be valid and name only valid hosts.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"targets":["localhost"]}`,
		`{"targets":["a","b"],"name":"nginx","state":2,"graceful":"yes"}`,
		`{"target":["a"],"cmd":"echo hi"}`,
		`{"targets":["a"],"role":"web","partial":["t1"],"extra_vars":{"k":[1,{"x":null}]}}`,
		`{"targets":["a"],"tasktype":"rollingrestart","taskopts":{"batch":"25%"}}`,
		`{"targets":"a"}`, `[]`, `{`, `{"state":1e400}`, "\x00", `{"graceful":2}`,
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
	})
}
