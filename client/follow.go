package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/0ops/exed/exe"
)

// Defaults of FollowOptions.
const (
	// DefaultRetries is how many reconnections in a row a Stream makes
	// without receiving an event before it gives up.
	DefaultRetries = 8
	// DefaultBackoff is the wait before the first reconnection; each one
	// in a row doubles it, up to DefaultMaxBackoff.
	DefaultBackoff    = 250 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// MaxLineBytes bounds one line of a follow stream. An event's output
// fields are capped by the server (1 MiB each by default), so a line
// longer than this is not exed's.
const MaxLineBytes = 64 << 20

// FollowOptions tune Follow.
type FollowOptions struct {
	// From skips the job's first From events: the stream yields events
	// From+1, From+2, ... (events are numbered from 1 in job order,
	// exe.Event.Seq). Zero: from the first.
	From int64
	// Retries bounds the reconnections in a row that bring no event: a
	// connection that drops, a server that answers 5xx or ends the stream
	// before the job ("stream ended: server shutting down"). Each event
	// received starts the count again. Zero: DefaultRetries; negative:
	// none.
	Retries int
	// Backoff is the wait before the first reconnection of a row, doubled
	// for each further one up to MaxBackoff, each wait drawn between half
	// and all of it so that many clients of a restarted server do not
	// come back at once. Zero: DefaultBackoff, DefaultMaxBackoff.
	Backoff, MaxBackoff time.Duration
}

// Stream is a follow of one job (Follow). Range over Events once, from
// one goroutine.
type Stream struct {
	c          *Client
	ctx        context.Context
	jid        string
	opts       FollowOptions
	seq        int64
	job        *exe.Job
	reconnects int
	used       bool
}

// Follow follows a job (GET /jobs/{jid}?follow=1&from=N): its events as
// they are recorded, from the first (or after opts.From), until it ends.
// Nothing is sent before the range over Events begins.
//
// When the connection drops, or the server ends the stream before the
// job (its last line the job still Running with "message": "stream
// ended: ..."), the Stream connects again with from set to the events
// it has received, so that no event is lost or repeated (bounded by
// opts.Retries, with backoff). An error that a new connection would not
// mend (404: the job is gone; 401, 403) ends it at once.
func (c *Client) Follow(ctx context.Context, jid string, opts FollowOptions) *Stream {
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	return &Stream{c: c, ctx: ctx, jid: jid, opts: opts, seq: max(opts.From, 0)}
}

// Job is the job as its last job line said: while the range over Events
// runs, the job as it stood when the current connection began (nil
// before the first); once the range has ended without an error, the job
// as it ended.
func (s *Stream) Job() *exe.Job { return s.job }

// Seq is the sequence number of the last event received (From before
// the first).
func (s *Stream) Seq() int64 { return s.seq }

// Reconnects is how many times the Stream has connected again.
func (s *Stream) Reconnects() int { return s.reconnects }

// Events yields the job's events in order, each with Host and Seq set,
// and ends when the job does (Job is then the final job). On an error it
// yields the zero Event and the error, once, and ends: the context's
// error when ctx ends, an *Error for an answer that reconnecting cannot
// mend, or the last cause wrapped when the retries ran out. Breaking
// out of the range closes the connection.
func (s *Stream) Events() iter.Seq2[exe.Event, error] {
	return func(yield func(exe.Event, error) bool) {
		if s.used {
			yield(exe.Event{}, errors.New("client: the events of a Stream can be ranged over once"))
			return
		}
		s.used = true
		failures := 0
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				s.reconnects++
			}
			before := s.seq
			res := s.connect(yield)
			switch {
			case res.finished, res.stopped:
				return
			case s.ctx.Err() != nil:
				yield(exe.Event{}, s.ctx.Err())
				return
			case res.permanent:
				yield(exe.Event{}, res.err)
				return
			}
			if s.seq > before {
				failures = 0
			}
			failures++
			if s.opts.Retries < 0 || failures > s.opts.Retries {
				yield(exe.Event{}, fmt.Errorf("following job %s: gave up after %d connections in a row without an event: %w", s.jid, failures, res.err))
				return
			}
			if !s.sleep(s.backoff(failures)) {
				yield(exe.Event{}, s.ctx.Err())
				return
			}
		}
	}
}

// backoff is the wait before reconnection n of a row (from 1): Backoff
// doubled n-1 times, capped, then drawn between its half and itself.
func (s *Stream) backoff(n int) time.Duration {
	d := s.opts.Backoff
	for i := 1; i < n && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func (s *Stream) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// outcome is how one connection of a Stream ended.
type outcome struct {
	finished  bool  // the final job line came
	stopped   bool  // the consumer broke out of the range
	permanent bool  // err is final: connecting again would not help
	err       error // why it ended, when not finished or stopped
}

// connect makes one connection and yields its events.
func (s *Stream) connect(yield func(exe.Event, error) bool) outcome {
	q := url.Values{"follow": {"1"}}
	if s.seq > 0 {
		q.Set("from", strconv.FormatInt(s.seq, 10))
	}
	req, err := s.c.newRequest(s.ctx, "GET", s.c.endpoint(q, "jobs", s.jid), nil)
	if err != nil {
		return outcome{permanent: true, err: err}
	}
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := s.c.hc.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		err := readError(res)
		return outcome{permanent: !retryable(res.StatusCode), err: err}
	}
	r := bufio.NewReaderSize(res.Body, 64<<10)
	for first := true; ; first = false {
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return outcome{err: fmt.Errorf("the stream of job %s broke before its final line: %w", s.jid, err)}
		}
		host, ev, job, message, err := parseLine(line)
		if err != nil {
			return outcome{permanent: true, err: fmt.Errorf("the stream of job %s: %w", s.jid, err)}
		}
		switch {
		case job == nil:
			if first {
				return outcome{permanent: true, err: fmt.Errorf("the stream of job %s does not begin with the job", s.jid)}
			}
			s.seq++
			ev.Host, ev.Seq = host, s.seq
			if !yield(ev, nil) {
				return outcome{stopped: true}
			}
		case first:
			s.job = job
		case job.Finished():
			s.job = job
			return outcome{finished: true}
		default:
			// The server ended the stream before the job: follow again.
			if message == "" {
				message = "the stream ended before the job did"
			}
			return outcome{err: errors.New(message)}
		}
	}
}

// retryable tells the statuses a later connection may not get: the server
// is overloaded, restarting or behind a proxy that lost it.
func retryable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

// readLine reads one whole line, without its newline; a line the stream
// cut short is an error.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			if line == nil {
				return bytes.TrimSuffix(chunk, []byte{'\n'}), nil
			}
			return append(line, chunk[:len(chunk)-1]...), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line)+len(chunk) > MaxLineBytes {
				return nil, fmt.Errorf("a line longer than %d bytes", MaxLineBytes)
			}
			line = append(line, chunk...)
		default:
			return nil, err
		}
	}
}

// parseLine reads a line of a follow stream: an event {"host": event}
// (one key) or a job object (many keys), with the "message" of a stream
// that ended early.
func parseLine(line []byte) (host string, ev exe.Event, job *exe.Job, message string, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return "", ev, nil, "", fmt.Errorf("a line that is not a JSON object: %w", err)
	}
	if len(fields) == 1 {
		for h, raw := range fields {
			if err := json.Unmarshal(raw, &ev); err != nil {
				return "", ev, nil, "", fmt.Errorf("the event of %s: %w", h, err)
			}
			return h, ev, nil, "", nil
		}
	}
	job = new(exe.Job)
	if err := json.Unmarshal(line, job); err != nil {
		return "", ev, nil, "", fmt.Errorf("the job line: %w", err)
	}
	if raw, ok := fields["message"]; ok {
		_ = json.Unmarshal(raw, &message)
	}
	return "", ev, job, message, nil
}
