package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// A batcher sends the calls that arrive while one of its round trips is
// on its way together, in the next pipeline: under many concurrent calls
// (submits, GETs, jobs ending) a call costs a share of one write, one
// read and one wake-up in each process rather than all of them. A lone
// call is sent at once: nothing waits for company.
//
// Each call still gets its own replies, and waits for them: a script's
// error (or any reply's) is its call's alone. A failure of the round
// trip itself (Redis down, a timeout) fails every call in it, as it
// would have failed each of them sent alone; the scripts recognise a
// call that the client sends again (tokens, event positions), so that
// retry is safe as it was.
//
// One round trip is on its way at a time: the caller that sends one
// sends, when its replies are in, nothing more; the first caller of the
// calls that waited meanwhile sends them all.
type batcher struct {
	rdb goredis.UniversalClient

	mu      sync.Mutex
	busy    bool         // a round trip is on its way
	waiting []*batchCall // to go in the next one

	// queued, when set (tests), is called with the number of calls
	// waiting each time one more waits, under mu.
	queued func(n int)
}

// maxBatch bounds the calls of one round trip; the others wait for the
// next one.
const maxBatch = 256

// batchCall is one call: queue adds its commands to the pipeline (it may
// be called again, on another pipeline, after Redis had to load the
// scripts).
type batchCall struct {
	queue func(ctx context.Context, p goredis.Pipeliner)
	// done is signalled once: the replies are in, or this call leads
	// (batch set): it sends batch, itself included.
	done  chan struct{}
	batch []*batchCall
	taken bool // in a round trip (or about to be): a cancel no longer withdraws it
}

// do sends the commands queue adds (on a pipeline, with those of other
// calls) and returns once their replies are in: the caller reads them
// from the commands. The error is ctx's when the call was given up
// before it was sent; otherwise nil, each command holding its own.
func (b *batcher) do(ctx context.Context, queue func(ctx context.Context, p goredis.Pipeliner)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &batchCall{queue: queue}
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		c.taken = true
		b.mu.Unlock()
		b.send(ctx, []*batchCall{c})
		return nil
	}
	c.done = make(chan struct{}, 1)
	b.waiting = append(b.waiting, c)
	if b.queued != nil {
		b.queued(len(b.waiting))
	}
	b.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		b.mu.Lock()
		if !c.taken {
			for i, w := range b.waiting {
				if w == c {
					b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
					break
				}
			}
			b.mu.Unlock()
			return ctx.Err()
		}
		b.mu.Unlock()
		<-c.done // on its way: its replies come (within the client's timeouts)
	}
	if c.batch != nil {
		b.send(ctx, c.batch)
	}
	return nil
}

// send makes the round trip of batch, then hands the calls that waited
// meanwhile to the first of them, and wakes the others of batch (the
// first of batch is the caller).
func (b *batcher) send(ctx context.Context, batch []*batchCall) {
	// One caller's cancel must not fail the others' calls.
	ctx = context.WithoutCancel(ctx)
	cmds := b.roundTrip(ctx, batch)
	if noScript(cmds) {
		// Redis lost its scripts (a restart, SCRIPT FLUSH): load them,
		// and send again the calls whose script was missing; each of
		// them was refused as a whole, before it ran.
		b.reload(ctx, batch, cmds)
	}
	b.mu.Lock()
	if n := min(len(b.waiting), maxBatch); n > 0 {
		next := b.waiting[:n:n]
		b.waiting = append([]*batchCall(nil), b.waiting[n:]...)
		for _, c := range next {
			c.taken = true
		}
		next[0].batch = next
		next[0].done <- struct{}{}
	} else {
		b.busy = false
	}
	b.mu.Unlock()
	for _, c := range batch[1:] {
		c.done <- struct{}{}
	}
}

// roundTrip sends the commands of batch in one pipeline; the result
// holds each call's commands, in order.
func (b *batcher) roundTrip(ctx context.Context, batch []*batchCall) [][]goredis.Cmder {
	p := b.rdb.Pipeline()
	ends := make([]int, len(batch))
	for i, c := range batch {
		c.queue(ctx, p)
		ends[i] = p.Len()
	}
	all, _ := p.Exec(ctx) // each command holds its own error
	cmds := make([][]goredis.Cmder, len(batch))
	start := 0
	for i, end := range ends {
		cmds[i] = all[start:end:end]
		start = end
	}
	return cmds
}

func noScript(cmds [][]goredis.Cmder) bool {
	for _, cs := range cmds {
		for _, cmd := range cs {
			if goredis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
				return true
			}
		}
	}
	return false
}

// reload loads the scripts (a rare path: a round trip each), then sends
// again, in one pipeline, the calls of batch that got NOSCRIPT.
func (b *batcher) reload(ctx context.Context, batch []*batchCall, cmds [][]goredis.Cmder) {
	// Not on the pipeline: Load notes the digest Redis answers, which a
	// pipeline's command holds only once it has run.
	for _, s := range batchedScripts {
		s.Load(ctx, b.rdb)
	}
	p := b.rdb.Pipeline()
	var again []*batchCall
	for i, cs := range cmds {
		if noScript([][]goredis.Cmder{cs}) {
			again = append(again, batch[i])
		}
	}
	for _, c := range again {
		c.queue(ctx, p)
	}
	_, _ = p.Exec(ctx)
}

// batchedScripts are the scripts sent through a batcher, loaded again
// when Redis lost them.
var batchedScripts = []*goredis.Script{createScript, appendScript, finishScript, appendFinishScript}
