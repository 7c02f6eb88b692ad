package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Follows share blocking reads. A follower first reads what its job's
// stream already holds by itself (non-blocking); then it waits on a hub: a
// goroutine that runs one blocking XREAD over the streams of up to
// hubStreams followed jobs and hands every follower the entries after its
// own cursor. So a thousand waiting follows hold a handful of Redis
// connections rather than a thousand, and one read wakes the followers of
// every job that moved. Their reads have a client of their own (see New).
//
// A hub's read is interrupted, when a follower of a stream it does not
// read yet arrives, by an entry on the hub's own wake stream, which the
// read includes. Should that write fail, the read still ends within
// PollInterval, and the newcomer is read from then on.

// hubStreams bounds the streams of one hub's read: a blocking XREAD
// costs Redis time in the number of its keys. A variable for tests.
var hubStreams = 256

const (
	// hubQueue bounds the entries a hub keeps for one follower that reads
	// slowly; past it the follower is dropped from the hub and reads its
	// backlog by itself.
	hubQueue = 10000
	// pageSize is the entries one read asks for, per stream.
	pageSize = 1000
)

// streamID is a stream entry id, ordered as Redis orders them.
type streamID struct{ ms, seq uint64 }

func parseID(s string) streamID {
	ms, seq, _ := strings.Cut(s, "-")
	var id streamID
	id.ms, _ = strconv.ParseUint(ms, 10, 64)
	id.seq, _ = strconv.ParseUint(seq, 10, 64)
	return id
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// hubFollower is one follow waiting on a hub.
type hubFollower struct {
	key string
	// last is the id of the last entry queued for it (or read before it
	// joined): it gets only later ones. Guarded by the hub's lock.
	last streamID

	mu      sync.Mutex
	queue   []goredis.XMessage
	err     error // the hub's read failed
	dropped bool  // fell hubQueue behind; reads its backlog itself
	ready   chan struct{}
}

// take returns what the hub queued since the last take.
func (f *hubFollower) take() (msgs []goredis.XMessage, err error, dropped bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msgs, f.queue = f.queue, nil
	return msgs, f.err, f.dropped
}

func (f *hubFollower) signal() {
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// hub is one shared blocking read; see the comment at the top.
type hub struct {
	s    *Store
	wake string // the wake stream's key

	mu        sync.Mutex
	followers map[string]map[*hubFollower]struct{} // by stream key
	wakeLast  streamID
	reading   bool                // a read is on its way
	readFrom  map[string]streamID // where it reads each stream from
	woken     bool                // a wake has been sent for this read
	running   bool
}

// hubs are a store's hubs, each reading at most hubStreams streams.
type hubs struct {
	mu   sync.Mutex
	list []*hub
}

// join adds a follower of key from entry last to a hub with room.
func (hs *hubs) join(s *Store, key string, last streamID) (*hub, *hubFollower) {
	f := &hubFollower{key: key, last: last, ready: make(chan struct{}, 1)}
	hs.mu.Lock()
	var h *hub
	for _, c := range hs.list {
		c.mu.Lock()
		_, has := c.followers[key]
		n := len(c.followers)
		c.mu.Unlock()
		if has {
			h = c // followers of one job share a hub
			break
		}
		if h == nil && n < hubStreams {
			h = c
		}
	}
	if h == nil {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		h = &hub{s: s, wake: s.key("wake", hex.EncodeToString(b)), followers: map[string]map[*hubFollower]struct{}{}}
		hs.list = append(hs.list, h)
	}
	h.mu.Lock()
	hs.mu.Unlock()
	fs, has := h.followers[key]
	if !has {
		fs = map[*hubFollower]struct{}{}
		h.followers[key] = fs
	}
	fs[f] = struct{}{}
	start := !h.running
	h.running = true
	// The running read must be ended early when it misses the newcomer's
	// entries: it does not read key, or reads it from further on.
	from, read := h.readFrom[key]
	wake := !start && h.reading && !h.woken && (!read || last.less(from))
	if wake {
		h.woken = true
	}
	h.mu.Unlock()
	switch {
	case start:
		go h.loop()
	case wake:
		// End the running read now, so that the next one reads key from
		// the newcomer's entry on. The wake key expires a minute after
		// the last wake.
		_, _ = h.s.rdb.Pipelined(context.Background(), func(p goredis.Pipeliner) error {
			p.XAdd(context.Background(), &goredis.XAddArgs{Stream: h.wake, MaxLen: 1, Values: []any{"w", "1"}})
			p.PExpire(context.Background(), h.wake, time.Minute)
			return nil
		})
	}
	return h, f
}

// leave removes a follower.
func (h *hub) leave(f *hubFollower) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(f)
}

func (h *hub) removeLocked(f *hubFollower) {
	if fs := h.followers[f.key]; fs != nil {
		delete(fs, f)
		if len(fs) == 0 {
			delete(h.followers, f.key)
		}
	}
}

// loop reads until no follower is left.
func (h *hub) loop() {
	ctx := context.Background()
	for {
		h.mu.Lock()
		if len(h.followers) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		// Each stream is read from its furthest-behind follower, so no
		// follower misses an entry; others skip what they already have.
		keys := make([]string, 0, len(h.followers)+1)
		from := make([]streamID, 0, len(h.followers)+1)
		for key, fs := range h.followers {
			first := true
			var min streamID
			for f := range fs {
				if first || f.last.less(min) {
					min, first = f.last, false
				}
			}
			keys = append(keys, key)
			from = append(from, min)
		}
		readFrom := make(map[string]streamID, len(keys))
		for i, k := range keys {
			readFrom[k] = from[i]
		}
		keys = append(keys, h.wake)
		from = append(from, h.wakeLast)
		h.reading, h.readFrom, h.woken = true, readFrom, false
		h.mu.Unlock()

		streams := append([]string(nil), keys...)
		for _, id := range from {
			streams = append(streams, id.String())
		}
		res, err := h.s.reads.XRead(ctx, &goredis.XReadArgs{Streams: streams, Count: pageSize, Block: h.s.opts.PollInterval}).Result()
		if errors.Is(err, goredis.Nil) {
			err = nil
		}
		for _, st := range res {
			if st.Stream != h.wake {
				predecode(st.Messages)
			}
		}

		h.mu.Lock()
		h.reading, h.readFrom = false, nil
		if err != nil {
			// Every follower returns the error; the next follow starts afresh.
			for key, fs := range h.followers {
				for f := range fs {
					f.mu.Lock()
					f.err = err
					f.mu.Unlock()
					f.signal()
				}
				delete(h.followers, key)
			}
			h.running = false
			h.mu.Unlock()
			return
		}
		for _, st := range res {
			if len(st.Messages) == 0 {
				continue
			}
			if st.Stream == h.wake {
				h.wakeLast = parseID(st.Messages[len(st.Messages)-1].ID)
				continue
			}
			h.deliverLocked(st.Stream, readFrom[st.Stream], st.Messages)
		}
		h.mu.Unlock()
	}
}

// deliverLocked queues msgs, read from entry from on, for the followers
// of key that had nothing after from: one that joined further behind
// while the read ran gets them from the next read instead, so none sees
// a gap.
func (h *hub) deliverLocked(key string, from streamID, msgs []goredis.XMessage) {
	lastID := parseID(msgs[len(msgs)-1].ID)
	for f := range h.followers[key] {
		if f.last.less(from) {
			continue
		}
		i := 0
		for i < len(msgs) && !f.last.less(parseID(msgs[i].ID)) {
			i++ // already had it
		}
		if i == len(msgs) {
			continue
		}
		f.last = lastID
		f.mu.Lock()
		if len(f.queue)+len(msgs)-i > hubQueue {
			f.dropped = true
			f.queue = nil
			h.removeLocked(f)
		} else {
			f.queue = append(f.queue, msgs[i:]...)
			if _, end := msgs[len(msgs)-1].Values["end"]; end {
				h.removeLocked(f) // nothing comes after the end
			}
		}
		f.mu.Unlock()
		f.signal()
	}
}
