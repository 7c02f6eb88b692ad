package http

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A job is written as json.Marshal writes it, byte for byte, HTML
// escapes and all; a submit's answer as the map it used to be.
func TestWriteJSONJob(t *testing.T) {
	job := &exe.Job{JID: "j1", State: exe.JobFailure, Error: "<b>&\u2028</b>", StartAt: time.Unix(1, 0).Unix(),
		Request:    exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "echo '<x>' && true"}},
		ReturnData: map[string][]exe.Event{"a": {{Host: "a", Status: exe.HostFailed, Msg: "<nope>", Exec: &exe.ExecResult{Stdout: "a\u2029b"}}}}}
	want, err := json.Marshal(job)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, job)
	assert.Equal(t, string(want)+"\n", rec.Body.String())

	rec = httptest.NewRecorder()
	writeJSON(rec, 200, (*exe.Job)(nil))
	assert.Equal(t, "null\n", rec.Body.String())

	want, err = json.Marshal(map[string]string{"jid": "j<1>"})
	require.NoError(t, err)
	got, err := json.Marshal(submitted{"j<1>"})
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	for _, jid := range []string{"0b6c1c1e-8f0e-4c53-9d4a-4a3c3f1f2b7e", "j<1>&\"\\\u2028\x01\xff", ""} {
		want, err := json.Marshal(submitted{jid})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		writeSubmitted(rec, jid)
		assert.Equal(t, 201, rec.Code)
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		assert.Equal(t, string(want)+"\n", rec.Body.String(), jid)
	}
}

// BenchmarkWriteSubmitted compares a submit's answer written by
// writeSubmitted with writeJSON's, which it replaces.
func BenchmarkWriteSubmitted(b *testing.B) {
	const jid = "0b6c1c1e-8f0e-4c53-9d4a-4a3c3f1f2b7e"
	for name, write := range map[string]func(*httptest.ResponseRecorder){
		"writeJSON":      func(w *httptest.ResponseRecorder) { writeJSON(w, 201, submitted{jid}) },
		"writeSubmitted": func(w *httptest.ResponseRecorder) { writeSubmitted(w, jid) },
	} {
		b.Run(name, func(b *testing.B) {
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				write(w)
			}
		})
	}
}
