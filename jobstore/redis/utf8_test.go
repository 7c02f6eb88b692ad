package redis_test

import (
	"context"
	"testing"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What a host printed reaches Redis as UTF-8, whoever appends it: every
// field of the event stream and the job's error, as stored.
func TestStoredTextIsUTF8(t *testing.T) {
	srv := redistest.Start(t)
	s, rdb, prefix := newStore(t, srv)
	ctx := context.Background()
	jid := runningJob(t, s)
	raw, text := "caf\xe9 \xff", "caf\uFFFD \uFFFD"
	require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "h" + raw, Status: exe.HostFailed, Name: raw, Msg: raw,
		Exec: &exe.ExecResult{RTC: 1, Stdout: raw, Stderr: raw}, Facts: map[string]any{raw: raw}}))
	require.NoError(t, s.Finish(ctx, jid, exe.JobFailure, "failed: "+raw))

	entries, err := rdb.XRange(ctx, prefix+"events:"+jid, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 2, "the event and the end")
	for _, e := range entries {
		for k, v := range e.Values {
			assert.True(t, utf8.ValidString(v.(string)), "stream field %s: %q", k, v)
		}
	}
	job, err := rdb.HGetAll(ctx, prefix+"job:"+jid).Result()
	require.NoError(t, err)
	for k, v := range job {
		assert.True(t, utf8.ValidString(v), "job field %s: %q", k, v)
	}

	got, err := s.Get(ctx, jid, true)
	require.NoError(t, err)
	assert.Equal(t, "failed: "+text, got.Error)
	assert.Equal(t, []exe.Event{{Host: "h" + text, Seq: 1, Status: exe.HostFailed, Name: text, Msg: text,
		Exec: &exe.ExecResult{RTC: 1, Stdout: text, Stderr: text}, Facts: map[string]any{text: text}}}, got.ReturnData["h"+text])
}
