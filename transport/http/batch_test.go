package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flushCounter is a ResponseRecorder that counts the flushes a handler
// asks for: each is one write to the client's socket.
type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++; f.ResponseRecorder.Flush() }

// followBody follows jid through api, returning the body and the number of
// flushes.
func followBody(t *testing.T, api http.Handler, jid, accept string) (string, int) {
	t.Helper()
	req := httptest.NewRequest("GET", "http://127.0.0.1/jobs/"+jid+"?follow=1", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	w := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	api.ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return w.Body.String(), w.flushes
}

func batchAPI(t *testing.T) (*memory.Store, http.Handler) {
	t.Helper()
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return store, exehttp.New(eng, exehttp.Options{})
}

// storedJob stores an ended job with events, appended in one call.
func storedJob(t *testing.T, store *memory.Store, jid string, events ...exe.Event) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, store.Create(ctx, &exe.Job{JID: jid, State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpPing, Targets: []string{"a"}}}))
	require.NoError(t, store.Append(ctx, jid, events...))
	require.NoError(t, store.Finish(ctx, jid, exe.JobDone, ""))
}

// The events a follow reads together go out in one write, in both
// formats: a stream of 100 stored events is the job line, one write of
// the 100 events, and the final job line.
func TestFollowWritesABatchAtOnce(t *testing.T) {
	store, api := batchAPI(t)
	jid := uuid.NewString()
	var events []exe.Event
	for i := range 100 {
		events = append(events, exe.Event{Host: "h" + strconv.Itoa(i), Status: exe.HostChanged,
			Exec: &exe.ExecResult{Stdout: strings.Repeat("x", i)}})
	}
	storedJob(t, store, jid, events...)

	body, flushes := followBody(t, api, jid, "")
	assert.Equal(t, 3, flushes, "job line, the events, final job line")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	require.Len(t, lines, 102)
	for i, ev := range events {
		ev.Seq = int64(i + 1)
		want, err := json.Marshal(map[string]exe.Event{ev.Host: ev})
		require.NoError(t, err)
		assert.Equal(t, string(want), lines[i+1])
	}

	body, flushes = followBody(t, api, jid, "text/event-stream")
	assert.Equal(t, 3, flushes, "job event, the events, done event")
	assert.Equal(t, 102, strings.Count(body, "\nevent: "))
	assert.Contains(t, body, "id: 100\nevent: host\ndata: {\"h99\":")
}

// A long backlog is written in bounded pieces, not as one buffer of the
// whole job: 2,000 events of 1 KiB go out in tens of writes.
func TestFollowWritesALongBacklogInPieces(t *testing.T) {
	store, api := batchAPI(t)
	jid := uuid.NewString()
	var events []exe.Event
	for i := range 2000 {
		events = append(events, exe.Event{Host: "h" + strconv.Itoa(i), Status: exe.HostChanged,
			Exec: &exe.ExecResult{Stdout: strings.Repeat("y", 1024)}})
	}
	storedJob(t, store, jid, events...)
	body, flushes := followBody(t, api, jid, "")
	assert.Equal(t, 2002, strings.Count(body, "\n"))
	assert.Greater(t, flushes, 2+len(body)/(64<<10), "pieces of at most 64 KiB")
	assert.Less(t, flushes, 2+2000/8, "not one write per event")
}

// Followers share each event's encoding, never another event's: jobs
// whose events have the same Seq and host, and a job stored again under
// its ID with other events, each stream their own; equal events with maps
// of their own are encoded each from its own.
func TestFollowLinesAreThoseOfTheirJob(t *testing.T) {
	store, api := batchAPI(t)
	first, second := uuid.NewString(), uuid.NewString()
	storedJob(t, store, first, exe.Event{Host: "a", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: "first"}})
	storedJob(t, store, second, exe.Event{Host: "a", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: "second"}})
	for range 2 { // the second time from the shared lines
		body, _ := followBody(t, api, first, "")
		assert.Contains(t, body, `"stdout":"first"`)
		assert.NotContains(t, body, "second")
		body, _ = followBody(t, api, second, "")
		assert.Contains(t, body, `"stdout":"second"`)
		assert.NotContains(t, body, "first")
	}
	// Stored again under the same ID (as a store emptied and refilled by
	// hand would be): the same Seq, host and status, other output.
	require.NoError(t, store.Delete(context.Background(), first))
	storedJob(t, store, first, exe.Event{Host: "a", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: "again"}})
	body, _ := followBody(t, api, first, "")
	sc := bufio.NewScanner(strings.NewReader(body))
	var got []string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"a":`) {
			got = append(got, sc.Text())
		}
	}
	assert.Equal(t, []string{`{"a":{"rtc":0,"status":5,"stderr":"","stdout":"again"}}`}, got)
}
