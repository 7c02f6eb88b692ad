package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/openapitest"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// revocationTrail is a server with a credentials file the test rewrites
// and reloads, and its audit trail.
type revocationTrail struct {
	*server
	path  string
	creds *auth.Keeper
	trail *lockedBuffer
}

func newRevocationServer(t *testing.T, lines string) *revocationTrail {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(path, []byte(lines), 0o600))
	creds, _, err := auth.NewKeeper(path)
	require.NoError(t, err)
	trail := &lockedBuffer{}
	s := newServer(t, serverOpts{api: exehttp.Options{Credentials: creds, Audit: exehttp.NewAudit(trail, nil)}})
	return &revocationTrail{server: s, path: path, creds: creds, trail: trail}
}

func (s *revocationTrail) reload(lines string) {
	s.t.Helper()
	require.NoError(s.t, os.WriteFile(s.path, []byte(lines), 0o600))
	_, err := s.creds.Reload()
	require.NoError(s.t, err)
}

// revocations are the audit trail's records of follows a reload ended.
func (s *revocationTrail) revocations() []exehttp.AuditRecord {
	var out []exehttp.AuditRecord
	for _, rec := range auditRecords(s.t, s.trail) {
		if rec.Action == "deny" && strings.Contains(rec.Message, "the credentials reloaded no longer allow it") {
			out = append(out, rec)
		}
	}
	return out
}

func (s *revocationTrail) follow(jid, token string) ndjson {
	s.t.Helper()
	res := s.openFollow(jid, "", http.Header{"Authorization": {"Bearer " + token}})
	require.Equal(s.t, http.StatusOK, res.StatusCode)
	return ndjson{s.t, bufio.NewReader(res.Body)}
}

// watchers counts the goroutines that wait on a reload for a follow.
func watchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "exed/transport/http.endOnRevocation")
		}
		buf = make([]byte, 2*len(buf))
	}
}

const (
	keepTok  = "keep-0123456789abcdef"
	otherTok = "other-0123456789abcdef"
)

// The messages of the last line of a follow whose credential a reload
// took away: revoked (gone from the file), narrowed (still there, but no
// longer allowed this job).
const (
	revokedEnd  = "stream ended: credentials revoked: authenticate again"
	narrowedEnd = "stream ended: the credentials reloaded no longer allow following this job"
)

// lastLine checks that rest, all that a follow stream sent once its
// credential was taken away, is its last line and nothing more: the job
// object as the stream first sent it (jid, state), with message.
func lastLine(t *testing.T, rest []byte, jid string, state exe.JobState, message string) {
	t.Helper()
	line, after, found := bytes.Cut(rest, []byte("\n"))
	require.True(t, found, "a last line comes: %q", rest)
	assert.Empty(t, string(after), "nothing after the last line")
	var end map[string]any
	require.NoError(t, json.Unmarshal(line, &end), "%s", line)
	assert.Equal(t, jid, end["jid"], "the job object: %s", line)
	assert.EqualValues(t, state, end["state"], "as the stream first sent it: %s", line)
	assert.Equal(t, message, end["message"])
}

// lastEvent is lastLine for an event stream: one "end" event whose data
// is that line (keep-alive comments aside).
func lastEvent(t *testing.T, rest []byte, jid string, state exe.JobState, message string) {
	t.Helper()
	evs, err := openapitest.ParseEvents(rest)
	require.NoError(t, err)
	require.Len(t, evs, 1, "one last event: %q", rest)
	assert.Equal(t, "end", evs[0].Event)
	assert.Empty(t, evs[0].ID, "an end event has no id: a browser resumes after the last host event")
	lastLine(t, []byte(evs[0].Data+"\n"), jid, state, message)
}

// Reloads that leave a token as it was, many in a row, one that adds
// another token and one that fails to load, leave its follow streaming:
// nothing is recorded as revoked, and no watcher outlives the stream.
func TestReloadsThatKeepATokenKeepItsFollow(t *testing.T) {
	s := newRevocationServer(t, keepTok+" name=keep\n")
	jid := s.storedJob()
	s.appendEvents(jid, 0, 1)
	st := s.follow(jid, keepTok)
	st.job()
	assert.JSONEq(t, eventLine(1), st.line())

	for range 100 {
		s.reload(keepTok + " name=keep\n")
	}
	s.reload(keepTok + " name=keep\n" + otherTok + " name=other\n")
	require.NoError(t, os.Chmod(s.path, 0o666))
	_, err := s.creds.Reload()
	require.Error(t, err, "a file others can write does not load")
	s.appendEvents(jid, 1, 2)
	assert.JSONEq(t, eventLine(2), st.line(), "the stream goes on")
	s.finish(jid)
	assert.EqualValues(t, exe.JobDone, st.job()["state"])
	st.end()
	assert.Empty(t, s.revocations())
	assert.Zero(t, watchers(), "the stream's watcher ended with it")
}

// A reload that narrows a token to its own jobs ends its follow of
// another user's job at once, with a last line that says so, recorded
// once.
func TestNarrowedTokenEndsItsFollow(t *testing.T) {
	s := newRevocationServer(t, keepTok+" name=keep\n"+otherTok+" name=other\n")
	jid := s.storedJob() // no user: not other's
	st := s.follow(jid, otherTok)
	st.job()
	s.reload(keepTok + " name=keep\n" + otherTok + " name=other jobs=own\n")
	rest, err := io.ReadAll(st.rd) // openFollow bounds it: an open stream fails here
	require.NoError(t, err, "the stream ends")
	lastLine(t, rest, jid, exe.JobRunning, narrowedEnd)
	assert.Len(t, s.revocations(), 1)
	assert.Zero(t, watchers())
}

// A reload that revokes a token as its follow's job ends: the stream
// either ends with the final job line and nothing recorded, or with the
// last line of a revoked stream (the job as first sent, Running, with
// the message) and recorded once as revoked.
func TestRevocationRacingTheFinalLine(t *testing.T) {
	s := newRevocationServer(t, keepTok+" name=keep\n"+otherTok+" name=other\n")
	for i := range 100 {
		s.reload(keepTok + " name=keep\n" + otherTok + " name=other\n")
		before := len(s.revocations())
		jid := s.storedJob()
		st := s.follow(jid, otherTok)
		st.job()
		var wg sync.WaitGroup
		wg.Go(func() { s.finish(jid) })
		wg.Go(func() {
			require.NoError(t, os.WriteFile(s.path, []byte(keepTok+" name=keep\n"), 0o600))
			_, err := s.creds.Reload()
			assert.NoError(t, err)
		})
		wg.Wait()
		b, err := io.ReadAll(st.rd) // openFollow bounds it
		require.NoError(t, err, "%d", i)
		got := len(s.revocations()) - before
		if !bytes.Contains(b, []byte(`"message"`)) {
			var final map[string]any
			require.NoError(t, json.Unmarshal(b, &final), "%d: %s", i, b)
			assert.EqualValues(t, exe.JobDone, final["state"], "%d: the final job line: %s", i, b)
			assert.Zero(t, got, "%d: a stream that ended with its job is not revoked", i)
		} else {
			lastLine(t, b, jid, exe.JobRunning, revokedEnd)
			assert.Equal(t, 1, got, "%d: one record per revoked stream", i)
		}
	}
	assert.Zero(t, watchers())
}

// A client that leaves a quiet follow ends its watcher.
func TestFollowLeftEndsItsWatcher(t *testing.T) {
	s := newRevocationServer(t, keepTok+" name=keep\n")
	jid := s.storedJob()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the server's Close, which waits for this request
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/jobs/"+jid+"?follow=1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+keepTok)
	res, err := s.Client().Do(req)
	require.NoError(t, err)
	st := ndjson{t, bufio.NewReader(res.Body)}
	st.job()
	// The handler starts the watcher after it writes the job line, so
	// the line can arrive first: wait for the watcher to run.
	require.Eventually(t, func() bool { return watchers() == 1 }, 10*time.Second, time.Millisecond, "the follow's watcher runs")
	cancel()
	res.Body.Close()
	require.Eventually(t, func() bool { return watchers() == 0 }, 10*time.Second, 5*time.Millisecond)
	assert.Empty(t, s.revocations())
}

// A reload that revokes a token while its follow is sending a long
// backlog ends the stream there: the rest of the backlog is not sent,
// and the last line says why.
func TestRevocationStopsABacklog(t *testing.T) {
	s := newRevocationServer(t, keepTok+" name=keep\n"+otherTok+" name=other\n")
	jid := s.storedJob()
	const events, size = 16 << 10, 1 << 10 // 16 MiB of lines
	msg := strings.Repeat("x", size)
	for range events {
		require.NoError(t, s.store.Append(context.Background(), jid, exe.Event{Host: "a", Status: exe.HostOK, Msg: msg}))
	}
	// A client with a small receive window: the server's writes block
	// once the socket buffers are full.
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}).DialContext}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest("GET", s.URL+"/jobs/"+jid+"?follow=1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+otherTok)
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	st := ndjson{t, bufio.NewReaderSize(res.Body, 4096)}
	st.job()
	assert.Contains(t, st.line(), msg, "the backlog is being sent")
	s.reload(keepTok + " name=keep\n")
	rest, err := io.ReadAll(st.rd)
	require.NoError(t, err)
	t.Logf("%d bytes after the reload", len(rest))
	assert.Less(t, len(rest), events*size/2, "the backlog stopped at the reload")
	// What was buffered of the backlog, then the last line.
	before := bytes.LastIndexByte(rest[:max(len(rest)-1, 0)], '\n')
	lastLine(t, rest[before+1:], jid, exe.JobRunning, revokedEnd)
	assert.Len(t, s.revocations(), 1)
}
