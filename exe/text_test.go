package exe_test

import (
	"context"
	"encoding/hex"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// perByte is the reference ToValidUTF8 must agree with: Go's string to
// []rune conversion, which makes each byte outside a valid sequence one
// U+FFFD.
func perByte(s string) string { return string([]rune(s)) }

func TestToValidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"plain\n":                  "plain\n",
		"café ☃ 🎉":                 "café ☃ 🎉",
		"caf\xe9\n":                "caf\uFFFD\n", // Latin-1
		"\xff\xfe":                 "\uFFFD\uFFFD",
		"\xe2\x82 cut":             "\uFFFD\uFFFD cut",   // a character missing its last byte
		"\xed\xa0\x80":             "\uFFFD\uFFFD\uFFFD", // a UTF-16 surrogate
		"\xc0\x80":                 "\uFFFD\uFFFD",       // overlong NUL
		"\xf4\x90\x80\x80":         "\uFFFD\uFFFD\uFFFD\uFFFD",
		"ok\x80é\xbf":              "ok\uFFFDé\uFFFD",
		"\uFFFD is already text\n": "\uFFFD is already text\n",
	} {
		got := exe.ToValidUTF8(in)
		assert.Equal(t, want, got, "%q", in)
		assert.True(t, utf8.ValidString(got), "%q", in)
		assert.Equal(t, perByte(in), got, "%q", in)
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"hello", 0, ""},
		{"hello", -1, ""},
		{"ééé", 3, "é"},           // é is two bytes: the cap falls inside the second
		{"ééé", 4, "éé"},          // exactly on a boundary
		{"a€", 2, "a"},            // three-byte character cut after its first byte
		{"a€", 3, "a"},            // ... after its second
		{"a€b", 4, "a€"},          // whole
		{"🎉x", 3, ""},             // four-byte character
		{"x\xe9\xe9", 2, "x\xe9"}, // bytes that are no character are cut as bytes
		{"x\xe2\x82", 2, "x\xe2"}, // a truncated character in the input: bytes too
		{"\x80\x80\x80\x80", 2, "\x80\x80"},
	} {
		assert.Equal(t, tc.want, exe.TruncateUTF8(tc.in, tc.n), "%q cut at %d", tc.in, tc.n)
	}
}

// raw is a host's output that is not UTF-8, in every string an event has.
const raw = "caf\xe9 \xff\n"

func rawEvent() exe.Event {
	return exe.Event{Host: "h" + raw, Status: exe.HostChanged, Name: raw, Msg: raw,
		Exec:  &exe.ExecResult{RTC: 1, Stdout: raw, Stderr: raw},
		Facts: map[string]any{raw: raw, "n": 1.0, "nested": map[string]any{"list": []any{raw, 2.0}, raw: []string{raw}}, "env": map[string]string{raw: raw}},
		Extra: map[string]any{"x" + raw: raw}}
}

// assertValid fails unless every string of ev is valid UTF-8.
func assertValid(t *testing.T, ev exe.Event) {
	t.Helper()
	assert.Empty(t, plugintest.NotUTF8(ev), "strings of %s's event that are not UTF-8", ev.Host)
}

func TestEventToValidUTF8(t *testing.T) {
	in := rawEvent()
	got := in.ToValidUTF8()
	assertValid(t, got)
	text := perByte(raw)
	assert.Equal(t, exe.Event{Host: "h" + text, Status: exe.HostChanged, Name: text, Msg: text,
		Exec:  &exe.ExecResult{RTC: 1, Stdout: text, Stderr: text},
		Facts: map[string]any{text: text, "n": 1.0, "nested": map[string]any{"list": []any{text, 2.0}, text: []string{text}}, "env": map[string]string{text: text}},
		Extra: map[string]any{"x" + text: text}}, got)
	assert.Equal(t, rawEvent(), in, "the emitter's event, maps and Exec are left as they were")

	valid := exe.Event{Host: "h", Status: exe.HostOK, Exec: &exe.ExecResult{Stdout: "é"}, Facts: map[string]any{"k": []any{"v"}}}
	same := valid.ToValidUTF8()
	assert.Same(t, valid.Exec, same.Exec, "valid text is not copied")
	assert.Equal(t, valid, same)
}

// In-process executors are covered too: the Runner, the sync path and the
// job's error get text whatever the executor emits.
func TestInProcessOutputNotUTF8(t *testing.T) {
	store := memory.New(memory.Options{})
	x := &plugintest.Executor{}
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, SyncTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"}, Execute: exe.ExecuteArgs{Cmd: "print " + hex.EncodeToString([]byte(raw))}}

	out, err := eng.RunSync(ctx, req)
	require.NoError(t, err)
	require.Len(t, out, 2)
	for _, h := range req.Targets {
		assertValid(t, out[h])
		assert.Equal(t, perByte(raw), out[h].Exec.Stdout)
	}

	jid, err := eng.Submit(ctx, req)
	require.NoError(t, err)
	var mu sync.Mutex
	var followed []exe.Event
	job, err := eng.Follow(ctx, jid, func(ev exe.Event) error { mu.Lock(); followed = append(followed, ev); mu.Unlock(); return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, job.State, job.Error)
	require.Len(t, followed, 2)
	for _, ev := range followed {
		assertValid(t, ev)
		assert.Equal(t, perByte(raw), ev.Msg)
	}

	req.Execute.Cmd = "error " + hex.EncodeToString([]byte(raw))
	jid, err = eng.Submit(ctx, req)
	require.NoError(t, err)
	job, err = eng.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, perByte(raw), job.Error)
}

func TestInputNotUTF8IsRefused(t *testing.T) {
	h := newHarness(t, exe.LocalOptions{}, nil)
	ctx := context.Background()
	_, err := h.engine.RunSync(ctx, execute("printf '\xe9'"))
	assert.ErrorIs(t, err, exe.ErrInvalid)
	assert.EqualError(t, err, `cmd: not valid UTF-8; write other bytes as shell escapes (printf '\351')`)
	_, err = h.engine.Submit(ctx, execute("echo \xff"))
	assert.ErrorIs(t, err, exe.ErrInvalid)
	_, err = h.engine.Match(ctx, "web\xe9")
	assert.ErrorIs(t, err, exe.ErrInvalid)
	assert.EqualError(t, err, "pattern: not valid UTF-8")
	ids, err := h.engine.Jobs(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "nothing was stored")
	out, err := h.engine.RunSync(ctx, execute(`printf 'caf\351' | od -An -c | tr -s ' '`))
	require.NoError(t, err)
	assert.Equal(t, " c a f 351\n", out["localhost"].Exec.Stdout, "escapes reach the host as the bytes they stand for")
}
