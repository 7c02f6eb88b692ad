package executor_test

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// perByte is what a host's bytes must read as: Go's string to []rune
// conversion makes each byte outside a valid sequence one U+FFFD, as
// exe.ToValidUTF8 does.
func perByte(b []byte) string { return string([]rune(string(b))) }

// raw is output that is not UTF-8: Latin-1 and a stray byte.
var raw = []byte("caf\xe9 \xff\n")

func TestOutputNotUTF8CrossesTheBoundary(t *testing.T) {
	c, _ := start(t, executor.Options{})
	ctx := context.Background()
	var evs events
	require.NoError(t, c.Execute(ctx, []string{"a", "b", "c"}, exe.ExecuteArgs{Cmd: "print " + hex.EncodeToString(raw)}, evs.emit))
	text := perByte(raw)
	require.Len(t, evs.all(), 3, "every host's result")
	for _, ev := range evs.all() {
		assert.Empty(t, plugintest.NotUTF8(ev))
		assert.Equal(t, exe.ExecResult{Stdout: text, Stderr: text}, *ev.Exec)
		assert.Equal(t, text, ev.Msg)
		assert.Equal(t, text, ev.Name)
		assert.Equal(t, text, ev.Facts[text])
		assert.Equal(t, map[string]any{"list": []any{text}, text: []any{text}}, ev.Facts["nested"])
		assert.Equal(t, map[string]any{"x-" + text: text}, ev.Extra)
	}

	err := c.Execute(ctx, []string{"a"}, exe.ExecuteArgs{Cmd: "error " + hex.EncodeToString(raw)}, evs.emit)
	assert.ErrorIs(t, err, exe.ErrInvalid, "the error kind survives a message that was not UTF-8")
	assert.EqualError(t, err, text)

	hosts, err := c.Match(ctx, "hex:"+hex.EncodeToString([]byte("web\xe9")))
	require.NoError(t, err)
	assert.Equal(t, []string{"web\uFFFD"}, hosts)
}

// A third-party plugin written without a thought for encodings gets it
// for free from the SDK.
func TestExamplePluginLocalshOutputNotUTF8(t *testing.T) {
	c, _ := start(t, executor.Options{Name: "localsh", Path: bins["exe-executor-localsh"], Config: map[string]string{"hosts": "web1, web2"}})
	var evs events
	require.NoError(t, c.Execute(context.Background(), []string{"web1", "web2"},
		exe.ExecuteArgs{Cmd: `printf 'caf\351\n'; printf '\377' >&2`}, evs.emit))
	require.Len(t, evs.all(), 2)
	for _, ev := range evs.all() {
		assert.Equal(t, exe.HostChanged, ev.Status)
		assert.Equal(t, exe.ExecResult{Stdout: "caf\uFFFD\n", Stderr: "\uFFFD"}, *ev.Exec, ev.Host)
	}
}

// FuzzPluginOutput sends random bytes as every string of a host's result
// through a real plugin process, and on through the Engine's sync and job
// paths and a job store: no operation may fail because of what a host
// printed, every host keeps its result, and every string that arrives is
// UTF-8 with each bad byte one U+FFFD.
func FuzzPluginOutput(f *testing.F) {
	c, err := executor.Start(context.Background(), executor.Options{Name: "testexec", Path: bins["testexec"]})
	require.NoError(f, err)
	f.Cleanup(func() { _ = c.Close() })
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: c, SyncTimeout: 30 * time.Second})
	require.NoError(f, err)
	f.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	for _, seed := range []string{"", "plain\n", "caf\xe9\n", "\xff\xfe", "\xe2\x82", "é", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80", "\x00\x1b[31m\xe9"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		text := perByte(out)
		hosts := []string{"a", "b"}
		check := func(ev exe.Event) {
			t.Helper()
			require.Empty(t, plugintest.NotUTF8(ev))
			require.NotNil(t, ev.Exec)
			require.Equal(t, text, ev.Exec.Stdout)
			require.Equal(t, text, ev.Msg)
		}
		req := exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: "print " + hex.EncodeToString(out)}}

		res, err := eng.RunSync(ctx, req)
		require.NoError(t, err)
		require.Len(t, res, len(hosts))
		for _, h := range hosts {
			check(res[h])
		}

		jid, err := eng.Submit(ctx, req)
		require.NoError(t, err)
		n := 0
		job, err := eng.Follow(ctx, jid, func(ev exe.Event) error { check(ev); n++; return nil })
		require.NoError(t, err)
		require.Equal(t, exe.JobDone, job.State, job.Error)
		require.Equal(t, len(hosts), n, "every host's result")
		require.NoError(t, eng.Delete(ctx, jid))

		err = c.Execute(ctx, hosts[:1], exe.ExecuteArgs{Cmd: "error " + hex.EncodeToString(out)}, func(exe.Event) {})
		require.ErrorIs(t, err, exe.ErrInvalid)
		require.Equal(t, text, err.Error())

		matched, err := c.Match(ctx, "hex:"+hex.EncodeToString(out))
		require.NoError(t, err)
		require.Equal(t, []string{text}, matched)
	})
}
