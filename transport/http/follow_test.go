package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storedJob stores a running job that no worker runs: the test writes its
// events (appendEvents) and ends it (finish) itself.
func (s *server) storedJob() string {
	s.t.Helper()
	jid := uuid.NewString()
	require.NoError(s.t, s.store.Create(context.Background(), &exe.Job{JID: jid, State: exe.JobRunning,
		StartAt: time.Now().Unix(), Request: exe.Request{Operate: exe.OpPing, Targets: []string{"a", "b"}}}))
	return jid
}

// appendEvents stores events from+1..to, each with its Seq as its msg
// and filed under host a or b by turns.
func (s *server) appendEvents(jid string, from, to int) {
	s.t.Helper()
	for seq := from + 1; seq <= to; seq++ {
		require.NoError(s.t, s.store.Append(context.Background(), jid,
			exe.Event{Host: []string{"a", "b"}[seq%2], Status: exe.HostOK, Msg: fmt.Sprint(seq)}))
	}
}

func (s *server) finish(jid string) {
	s.t.Helper()
	require.NoError(s.t, s.store.Finish(context.Background(), jid, exe.JobDone, ""))
}

// eventLine is the NDJSON line, and the data of the event, of event seq
// as appendEvents stores it.
func eventLine(seq int) string {
	return fmt.Sprintf(`{"%s":{"msg":"%d","status":1}}`, []string{"a", "b"}[seq%2], seq)
}

// openFollow starts a follow of jid with query (after follow=1) and
// header, and returns the answer, whose body the test reads and closes.
func (s *server) openFollow(jid, query string, header http.Header) *http.Response {
	s.t.Helper()
	// Bounds every read of the stream.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/jobs/"+jid+"?follow=1"+query, nil)
	require.NoError(s.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := s.Client().Do(req)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { res.Body.Close() })
	return res
}

// ndjson reads a follow stream's lines one by one.
type ndjson struct {
	t  *testing.T
	rd *bufio.Reader
}

func (n ndjson) line() string {
	n.t.Helper()
	b, err := n.rd.ReadBytes('\n')
	require.NoError(n.t, err)
	return strings.TrimSuffix(string(b), "\n")
}

func (n ndjson) job() map[string]any {
	n.t.Helper()
	l := n.line()
	var job map[string]any
	require.NoError(n.t, json.Unmarshal([]byte(l), &job), l)
	require.Contains(n.t, job, "jid", "a job line: %s", l)
	return job
}

func (n ndjson) end() {
	n.t.Helper()
	_, err := n.rd.ReadByte()
	assert.ErrorIs(n.t, err, io.EOF, "the stream ends after the final job line")
}

// A follow from N sends the job line, the events after event N (those
// stored and those to come), then the final job line.
func TestFollowFrom(t *testing.T) {
	s := newServer(t, serverOpts{})
	jid := s.storedJob()
	s.appendEvents(jid, 0, 5)

	res := s.openFollow(jid, "&from=3", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
	st := ndjson{t, bufio.NewReader(res.Body)}
	assert.EqualValues(t, exe.JobRunning, st.job()["state"])
	assert.JSONEq(t, eventLine(4), st.line())
	assert.JSONEq(t, eventLine(5), st.line())
	s.appendEvents(jid, 5, 6)
	assert.JSONEq(t, eventLine(6), st.line(), "events to come follow")
	s.finish(jid)
	assert.EqualValues(t, exe.JobDone, st.job()["state"])
	st.end()

	// Past the last event: a follow from there, and from the last one,
	// of the ended job, has nothing but the job lines; from 0 everything.
	for from, want := range map[string]int{"0": 6, "": 6, "2": 4, "6": 0, "100": 0} {
		query := "&from=" + from
		if from == "" {
			query = ""
		}
		res := s.openFollow(jid, query, nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		st := ndjson{t, bufio.NewReader(res.Body)}
		st.job()
		for seq := 6 - want + 1; seq <= 6; seq++ {
			assert.JSONEq(t, eventLine(seq), st.line(), "from %q", from)
		}
		assert.EqualValues(t, exe.JobDone, st.job()["state"], "from %q", from)
		st.end()
	}

	// A follow from beyond the stored events skips the ones to come up
	// to it.
	ahead := s.storedJob()
	s.appendEvents(ahead, 0, 2)
	res = s.openFollow(ahead, "&from=4", nil)
	st = ndjson{t, bufio.NewReader(res.Body)}
	st.job()
	s.appendEvents(ahead, 2, 5)
	assert.JSONEq(t, eventLine(5), st.line())
	s.finish(ahead)
	st.job()
	st.end()
}

// from that is not an event number, or without follow, is a 400 naming
// it, before any stream starts.
func TestFollowFromRefused(t *testing.T) {
	s := newServer(t, serverOpts{})
	jid := s.storedJob()
	for query, want := range map[string]string{
		"?follow=1&from=-1":                   `from: "-1" is not an event sequence number`,
		"?follow=1&from=abc":                  `from: "abc" is not an event sequence number`,
		"?follow=1&from=1.5":                  `from: "1.5" is not an event sequence number`,
		"?follow=1&from=":                     `from: "" is not an event sequence number`,
		"?follow=1&from=%2B3":                 `from: "+3" is not an event sequence number`,
		"?follow=1&from=99999999999999999999": `from: "99999999999999999999" is not an event sequence number`,
		"?from=3":                             "from: only with follow=1",
		"?follow=0&from=3":                    "from: only with follow=1",
		"?outputs=1&from=3":                   "from: only with follow=1",
		"?follow=1&from=1&from=2":             "from: given 2 times; give it once",
	} {
		r := s.get("/jobs/" + jid + query)
		assert.Equal(t, http.StatusBadRequest, r.status, query)
		assert.Contains(t, r.message(t), want, query)
	}
}

// sse reads an event stream message by message, as an EventSource does,
// and counts the comment lines.
type sse struct {
	t        *testing.T
	rd       *bufio.Reader
	comments int
}

func (s *sse) next() openapitest.Event {
	s.t.Helper()
	var block strings.Builder
	for {
		l, err := s.rd.ReadString('\n')
		require.NoError(s.t, err, "an event comes (so far: %q)", block.String())
		if strings.HasPrefix(l, ":") {
			s.comments++
			continue
		}
		if l == "\n" {
			if block.Len() > 0 {
				break
			}
			continue
		}
		block.WriteString(l)
	}
	evs, err := openapitest.ParseEvents([]byte(block.String() + "\n"))
	require.NoError(s.t, err)
	require.Len(s.t, evs, 1, block.String())
	return evs[0]
}

func (s *sse) host(seq int) {
	s.t.Helper()
	ev := s.next()
	assert.Equal(s.t, "host", ev.Event)
	assert.Equal(s.t, fmt.Sprint(seq), ev.ID, "a host event's id is its sequence number")
	assert.JSONEq(s.t, eventLine(seq), ev.Data)
}

func (s *sse) job(name string) map[string]any {
	s.t.Helper()
	ev := s.next()
	require.Equal(s.t, name, ev.Event, ev.Data)
	assert.Empty(s.t, ev.ID, "only host events carry an id")
	var job map[string]any
	require.NoError(s.t, json.Unmarshal([]byte(ev.Data), &job), ev.Data)
	return job
}

var eventStream = http.Header{"Accept": {"text/event-stream"}}

// With Accept: text/event-stream the follow is Server-Sent Events: the
// job, each host event with its sequence number as id, then done. A
// client that lost the stream and comes back with Last-Event-ID (as an
// EventSource does, with the URL it was opened with) gets the events
// after it: nothing twice, nothing skipped.
func TestFollowEventStream(t *testing.T) {
	s := newServer(t, serverOpts{})
	jid := s.storedJob()
	s.appendEvents(jid, 0, 3)

	res := s.openFollow(jid, "&from=1", eventStream)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	assert.Equal(t, "Accept", res.Header.Get("Vary"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	st := &sse{t: t, rd: bufio.NewReader(res.Body)}
	first := st.next()
	assert.Equal(t, 2000, first.Retry, "the first message sets the reconnection delay")
	assert.Equal(t, "job", first.Event)
	assert.Contains(t, first.Data, `"jid":"`+jid+`"`)
	st.host(2)
	st.host(3)
	s.appendEvents(jid, 3, 4)
	st.host(4)
	res.Body.Close() // the connection drops after event 4

	s.appendEvents(jid, 4, 6)
	res = s.openFollow(jid, "&from=1", http.Header{"Accept": {"text/event-stream"}, "Last-Event-Id": {"4"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	st = &sse{t: t, rd: bufio.NewReader(res.Body)}
	assert.EqualValues(t, exe.JobRunning, st.job("job")["state"])
	st.host(5)
	st.host(6)
	s.finish(jid)
	assert.EqualValues(t, exe.JobDone, st.job("done")["state"], "the last event says the job is done")
	_, err := st.rd.ReadByte()
	assert.ErrorIs(t, err, io.EOF)

	// from and Last-Event-ID: the later wins.
	res = s.openFollow(jid, "&from=5", http.Header{"Accept": {"text/event-stream"}, "Last-Event-Id": {"2"}})
	st = &sse{t: t, rd: bufio.NewReader(res.Body)}
	st.job("job")
	st.host(6)
	st.job("done")

	// Last-Event-ID is the event stream's: an NDJSON follow ignores it.
	res = s.openFollow(jid, "", http.Header{"Last-Event-Id": {"5"}})
	nd := ndjson{t, bufio.NewReader(res.Body)}
	nd.job()
	assert.JSONEq(t, eventLine(1), nd.line())

	for _, bad := range []string{"x", "-1", "4.0", "99999999999999999999"} {
		req, err := http.NewRequest("GET", s.URL+"/jobs/"+jid+"?follow=1", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Last-Event-ID", bad)
		res, err := s.Client().Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, bad)
		assert.Contains(t, string(b), `Last-Event-ID: \"`+bad+`\" is not an event sequence number`)
	}
}

// The format follows Accept: an event stream only when text/event-stream
// is asked for above NDJSON; anything else keeps the seed's NDJSON.
func TestFollowFormatNegotiation(t *testing.T) {
	s := newServer(t, serverOpts{})
	jid := s.storedJob()
	s.finish(jid)
	for accept, want := range map[string]string{
		"":                      "application/x-ndjson",
		"*/*":                   "application/x-ndjson",
		"application/json":      "application/x-ndjson",
		"text/event-stream":     "text/event-stream",
		"text/event-stream;q=0": "application/x-ndjson",
		"Text/Event-Stream":     "text/event-stream",
		"application/x-ndjson, text/event-stream;q=0.5": "application/x-ndjson",
		"text/event-stream, application/x-ndjson;q=0.9": "text/event-stream",
		"text/event-stream, application/x-ndjson":       "application/x-ndjson",
		"text/html, text/event-stream;q=0.8, */*;q=0.1": "text/event-stream",
	} {
		res := s.openFollow(jid, "", http.Header{"Accept": {accept}})
		_, _ = io.Copy(io.Discard, res.Body)
		assert.Equal(t, http.StatusOK, res.StatusCode, accept)
		assert.Equal(t, want, res.Header.Get("Content-Type"), "Accept: %s", accept)
	}
	// Without follow, Accept changes nothing: the job object.
	req, err := http.NewRequest("GET", s.URL+"/jobs/"+jid, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
}

// An idle event stream gets a comment line every StreamKeepAlive; an
// NDJSON stream never does (its lines are the seed's).
func TestFollowKeepAlive(t *testing.T) {
	s := newServer(t, serverOpts{api: exehttp.Options{StreamKeepAlive: 20 * time.Millisecond}})
	jid := s.storedJob()
	events := s.openFollow(jid, "", eventStream)
	lines := s.openFollow(jid, "", nil)
	st := &sse{t: t, rd: bufio.NewReader(events.Body)}
	st.job("job")
	nd := ndjson{t, bufio.NewReader(lines.Body)}
	nd.job()
	// Wait for two comments: the streams have been idle for a while.
	for i := 0; i < 2; i++ {
		l, err := st.rd.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, ": keepalive\n", l)
		l, err = st.rd.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "\n", l, "a comment is a message of its own")
	}
	s.appendEvents(jid, 0, 1)
	st.host(1)
	assert.JSONEq(t, eventLine(1), nd.line(), "the NDJSON stream's next line is the event")
	s.finish(jid)
	st.job("done")
	nd.job()
	nd.end()
}

// An event stream that ends before its job ends with an "end" event: the
// job as last known, still running, and why; an EventSource then
// reconnects by itself.
func TestFollowEventStreamEndsOnShutdown(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: openapitest.Handler(t, exehttp.New(eng, exehttp.Options{}), "")}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	jid := uuid.NewString()
	require.NoError(t, store.Create(context.Background(), &exe.Job{JID: jid, State: exe.JobRunning,
		StartAt: time.Now().Unix(), Request: exe.Request{Operate: exe.OpPing, Targets: []string{"localhost"}}}))
	require.NoError(t, store.Append(context.Background(), jid, exe.Event{Host: "localhost", Status: exe.HostOK}))

	req, err := http.NewRequest("GET", "http://"+ln.Addr().String()+"/jobs/"+jid+"?follow=1", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	st := &sse{t: t, rd: bufio.NewReader(res.Body)}
	st.job("job")
	assert.Equal(t, "1", st.next().ID)

	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	end := st.job("end")
	assert.Equal(t, "stream ended: server shutting down", end["message"])
	assert.EqualValues(t, exe.JobRunning, end["state"])
	_, err = st.rd.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown waited for the stream")
	}
}

// reloadOnFollow reloads the credentials as a follow stream starts: after
// its request was let in, before its first line is written.
type reloadOnFollow struct{ reload func() }

func (reloadOnFollow) Request(string, int, time.Duration) {}

func (o reloadOnFollow) FollowStreams(delta int) {
	if delta > 0 {
		o.reload()
	}
}

// A reload that revokes a token after its follow was let in, before the
// stream's first line, ends the stream after that line: no event, no
// final job, but the last line of a revoked stream (the job as that
// first line had it, with the message).
func TestFollowOfATokenRevokedAsItStarts(t *testing.T) {
	const keep, revoked = "keep-0123456789abcdef", "revoked-0123456789abcdef"
	path := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(path, []byte(keep+" name=keep\n"+revoked+" name=revoked\n"), 0o600))
	creds, _, err := auth.NewKeeper(path)
	require.NoError(t, err)
	var once sync.Once
	s := newServer(t, serverOpts{api: exehttp.Options{Credentials: creds, Observer: reloadOnFollow{func() {
		once.Do(func() {
			assert.NoError(t, os.WriteFile(path, []byte(keep+" name=keep\n"), 0o600))
			_, err := creds.Reload()
			assert.NoError(t, err)
		})
	}}}})
	jid := s.storedJob()
	s.appendEvents(jid, 0, 2)
	s.finish(jid)

	res := s.openFollow(jid, "", http.Header{"Authorization": {"Bearer " + revoked}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	st := ndjson{t, bufio.NewReader(res.Body)}
	assert.EqualValues(t, exe.JobDone, st.job()["state"], "the job line, written as the request was let in")
	rest, err := io.ReadAll(st.rd)
	require.NoError(t, err)
	lastLine(t, rest, jid, exe.JobDone, revokedEnd)
	res = s.openFollow(jid, "", http.Header{"Authorization": {"Bearer " + keep}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	st = ndjson{t, bufio.NewReader(res.Body)}
	st.job()
	assert.JSONEq(t, eventLine(1), st.line(), "a token still in force follows")
}

// A reload that revokes a token ends its follow streams at once, though
// their job is quiet: no event has to come first. Each ends with the
// documented last line (NDJSON) or end event (Server-Sent Events), the
// job as the stream knew it, Running, with a message that says the
// credential was revoked. Streams of a token still in force go on.
func TestRevokedTokenEndsItsQuietFollows(t *testing.T) {
	const keep, revoked = "keep-0123456789abcdef", "revoked-0123456789abcdef"
	s := newRevocationServer(t, keep+" name=keep\n"+revoked+" name=revoked\n")
	jid := s.storedJob()
	s.appendEvents(jid, 0, 1)

	open := func(token, accept string) *bufio.Reader {
		res := s.openFollow(jid, "", http.Header{"Authorization": {"Bearer " + token}, "Accept": {accept}})
		require.Equal(t, http.StatusOK, res.StatusCode)
		return bufio.NewReader(res.Body)
	}
	ndjsonRevoked := ndjson{t, open(revoked, "application/x-ndjson")}
	assert.EqualValues(t, exe.JobRunning, ndjsonRevoked.job()["state"])
	assert.JSONEq(t, eventLine(1), ndjsonRevoked.line())
	sseRevoked := &sse{t: t, rd: open(revoked, "text/event-stream")}
	sseRevoked.job("job")
	sseRevoked.host(1)
	kept := ndjson{t, open(keep, "application/x-ndjson")}
	kept.job()
	assert.JSONEq(t, eventLine(1), kept.line())

	s.reload(keep + " name=keep\n")
	rest, err := io.ReadAll(ndjsonRevoked.rd) // openFollow bounds it: an open stream fails here
	require.NoError(t, err, "ndjson: the stream ends")
	lastLine(t, rest, jid, exe.JobRunning, revokedEnd)
	rest, err = io.ReadAll(sseRevoked.rd)
	require.NoError(t, err, "sse: the stream ends")
	lastEvent(t, rest, jid, exe.JobRunning, revokedEnd)
	s.appendEvents(jid, 1, 2)
	assert.JSONEq(t, eventLine(2), kept.line(), "a token still in force follows")
	s.finish(jid)
	assert.EqualValues(t, exe.JobDone, kept.job()["state"])
	kept.end()
}
