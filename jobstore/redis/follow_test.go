package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/redistest"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testStore is a store with opts on a fresh redis-server.
func testStore(t *testing.T, opts Options) *Store {
	t.Helper()
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// slowStore is a store whose shared reads end only after a minute on
// their own, so a follow that gets its entries sooner was woken.
func slowStore(t *testing.T) *Store {
	return testStore(t, Options{PollInterval: time.Minute})
}

// runningJob stores a running job; with a queue key, it is queued too.
func runningJob(t *testing.T, s *Store, queue ...string) string {
	t.Helper()
	j := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "true"}}}
	require.NoError(t, s.create(context.Background(), j, strings.Join(queue, "")))
	return j.JID
}

// waitingRead returns the hub read that is under way with key in it, read
// from id from; it fails the test if none comes.
func waitingRead(t *testing.T, s *Store, key string, from streamID) *hub {
	t.Helper()
	var found *hub
	require.Eventually(t, func() bool {
		return anyHub(s, func(h *hub) bool {
			at, ok := h.readFrom[key]
			if h.reading && ok && at == from {
				found = h
			}
			return found != nil
		})
	}, 10*time.Second, time.Millisecond)
	return found
}

// anyHub reports whether fn, called with each hub's lock held, is true for
// one of s's hubs.
func anyHub(s *Store, fn func(h *hub) bool) bool {
	s.hubs.mu.Lock()
	defer s.hubs.mu.Unlock()
	for _, h := range s.hubs.list {
		h.mu.Lock()
		ok := fn(h)
		h.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// received waits for a hub follower's next delivery.
func received(t *testing.T, f *hubFollower) []goredis.XMessage {
	t.Helper()
	select {
	case <-f.ready:
	case <-time.After(10 * time.Second): // bound only: a woken read answers at once
		t.Fatal("no delivery: the shared read was not woken")
	}
	msgs, err, _ := f.take()
	require.NoError(t, err)
	return msgs
}

func TestHubWakesForANewStream(t *testing.T) {
	s := slowStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := runningJob(t, s)
	go func() { _, _ = s.Follow(ctx, first, 0, func(exe.Event) error { return nil }) }()
	waitingRead(t, s, s.eventsKey(first), streamID{})

	// A follow of another job joins the read that is blocked without it.
	second := runningJob(t, s)
	h, f := s.hubs.join(s, s.eventsKey(second), streamID{})
	defer h.leave(f)
	require.NoError(t, s.Append(ctx, second, exe.Event{Host: "a", Status: exe.HostOK, Msg: "hello"}))
	var msgs []goredis.XMessage
	for len(msgs) == 0 { // the wake may arrive before the event
		msgs = received(t, f)
	}
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0].Values["e"], "hello")
}

func TestHubWakesForAFollowerBehind(t *testing.T) {
	s := slowStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jid := runningJob(t, s)
	for i := 1; i <= 3; i++ {
		require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "a", Status: exe.HostOK, Msg: fmt.Sprint(i)}))
	}
	all, err := s.rdb.XRange(ctx, s.eventsKey(jid), "-", "+").Result()
	require.NoError(t, err)
	go func() { _, _ = s.Follow(ctx, jid, 0, func(exe.Event) error { return nil }) }()
	// The first follower has the three events: the read is from the third.
	waitingRead(t, s, s.eventsKey(jid), parseID(all[2].ID))

	// A second one that has only the first event must get the other two
	// now, not when the read ends by itself.
	h, f := s.hubs.join(s, s.eventsKey(jid), parseID(all[0].ID))
	defer h.leave(f)
	var msgs []goredis.XMessage
	for len(msgs) == 0 {
		msgs = received(t, f)
	}
	require.Len(t, msgs, 2)
	assert.Equal(t, all[1].ID, msgs[0].ID)
	assert.Equal(t, all[2].ID, msgs[1].ID)
}

func TestHubDropsASlowFollower(t *testing.T) {
	s := slowStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jid := runningJob(t, s)
	key := s.eventsKey(jid)

	gotFirst, release := make(chan struct{}), make(chan struct{})
	var msgs []string
	type result struct {
		job *exe.Job
		err error
	}
	done := make(chan result, 1)
	go func() {
		job, err := s.Follow(ctx, jid, 0, func(ev exe.Event) error {
			if len(msgs) == 0 {
				close(gotFirst)
				<-release // reads nothing while the backlog grows
			}
			msgs = append(msgs, ev.Msg)
			return nil
		})
		done <- result{job, err}
	}()
	waitingRead(t, s, key, streamID{})
	require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "a", Msg: "0"}))
	<-gotFirst

	// Past hubQueue entries: the hub lets the follower go.
	const total = hubQueue + 2000
	for i := 1; i < total; i += 100 {
		batch := make([]exe.Event, 0, 100)
		for k := i; k < i+100 && k < total; k++ {
			batch = append(batch, exe.Event{Host: "a", Msg: fmt.Sprint(k)})
		}
		require.NoError(t, s.Append(ctx, jid, batch...))
	}
	require.Eventually(t, func() bool {
		return !anyHub(s, func(h *hub) bool { _, has := h.followers[key]; return has })
	}, 10*time.Second, time.Millisecond, "the slow follower is dropped from the hub")
	require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
	close(release)

	// It reads its backlog by itself: everything, in order, once.
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not end")
	}
	require.NoError(t, r.err)
	assert.Equal(t, exe.JobDone, r.job.State)
	require.Len(t, msgs, total)
	for i, m := range msgs {
		if m != fmt.Sprint(i) {
			t.Fatalf("event %d is %q", i, m)
		}
	}
}

func TestStreamIDOrder(t *testing.T) {
	assert.True(t, parseID("1-0").less(parseID("1-1")))
	assert.True(t, parseID("9-5").less(parseID("10-0")), "numeric, not lexical")
	assert.False(t, parseID("10-0").less(parseID("10-0")))
	assert.True(t, parseID("0").less(parseID("0-1")))
	assert.Equal(t, "1700000000000-3", parseID("1700000000000-3").String())
}

// xrangeCounter counts the calls of the skip script (loaded beforehand,
// so each is one EVALSHA) and the event entries that XRANGE replies bring
// to the client.
type xrangeCounter struct {
	mu      sync.Mutex
	scripts int
	events  int
}

func (c *xrangeCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *xrangeCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		c.count(cmd)
		return err
	}
}

func (c *xrangeCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return err
	}
}

func (c *xrangeCounter) count(cmd goredis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch name := strings.ToLower(cmd.Name()); {
	case name == "evalsha" && len(cmd.Args()) > 1 && cmd.Args()[1] == skipScript.Hash():
		c.scripts++
	case name == "xrange":
		if x, ok := cmd.(*goredis.XMessageSliceCmd); ok {
			for _, m := range x.Val() {
				if _, ok := m.Values["e"]; ok {
					c.events++
				}
			}
		}
	}
}

func (c *xrangeCounter) take() (scripts, events int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	scripts, events = c.scripts, c.events
	c.scripts, c.events = 0, 0
	return scripts, events
}

// A follow from the k-th event finds it in Redis, skipBatch events per
// call: the events before it never reach the store's client.
func TestFollowFromSkipsInRedis(t *testing.T) {
	defer func(n int64) { skipBatch = n }(skipBatch)
	skipBatch = 7
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	counter := &xrangeCounter{}
	rdb.AddHook(counter)
	s := New(rdb, Options{})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	const n = 50
	jid := runningJob(t, s)
	for i := 1; i <= n; i++ {
		require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "a", Status: exe.HostOK, Msg: fmt.Sprint(i)}))
	}
	require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
	require.NoError(t, skipScript.Load(ctx, rdb).Err())
	counter.take()

	for _, from := range []int64{0, 6, 7, 8, 20, 49, n, n + 10} {
		var got []string
		job, err := s.Follow(ctx, jid, from, func(ev exe.Event) error {
			assert.Equal(t, fmt.Sprint(ev.Seq), ev.Msg, "from %d", from)
			got = append(got, ev.Msg)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, exe.JobDone, job.State)
		var want []string
		for i := from + 1; i <= n; i++ {
			want = append(want, fmt.Sprint(i))
		}
		assert.Equal(t, want, got, "from %d", from)
		scripts, events := counter.take()
		// A walk per 7 events; past the last event, the walk that finds
		// it the last (one more when the others took them all).
		walks := (min(from, n) + skipBatch - 1) / skipBatch
		if from > n && n%skipBatch == 0 {
			walks++
		}
		assert.Equal(t, int(walks), scripts, "from %d: skip script calls", from)
		assert.Equal(t, len(want), events, "from %d: only the events after it are read", from)
	}
}
