package redis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heldPipelines records the commands of each pipeline a client sends,
// and holds the first one back until release is closed (entered is
// closed once it is held): calls made meanwhile must wait for the next.
type heldPipelines struct {
	mu      sync.Mutex
	sizes   []int
	first   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newHeldPipelines() *heldPipelines {
	return &heldPipelines{entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldPipelines) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *heldPipelines) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return next
}
func (h *heldPipelines) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.mu.Lock()
		h.sizes = append(h.sizes, len(cmds))
		h.mu.Unlock()
		if h.first.CompareAndSwap(false, true) {
			close(h.entered)
			<-h.release
		}
		return next(ctx, cmds)
	}
}

func (h *heldPipelines) Sizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.sizes...)
}

// whenQueued returns a channel closed once n calls wait in s's batcher.
func whenQueued(s *Store, n int) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	s.batch.queued = func(waiting int) {
		if waiting == n {
			once.Do(func() { close(ch) })
		}
	}
	return ch
}

func pingJob(i int) *exe.Job {
	return &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{fmt.Sprintf("host%d", i)},
			Execute: exe.ExecuteArgs{Cmd: fmt.Sprintf("echo %d", i)}}}
}

// TestConcurrentCallsShareARoundTrip: submits and reads that arrive while
// a round trip is on its way go together in the next one, and each gets
// its own answer: its own job stored and queued, its own job read, its
// own error (a script that fails for one job, a job not found) failing
// no other call.
func TestConcurrentCallsShareARoundTrip(t *testing.T) {
	s := testStore(t, Options{})
	ctx := context.Background()
	stored := pingJob(-1)
	require.NoError(t, s.Create(ctx, stored))
	held := newHeldPipelines()
	s.rdb.AddHook(held)

	const n = 40
	const broken = 7 // its job's key holds a string: its script fails
	jobs := make([]*exe.Job, n)
	for i := range jobs {
		jobs[i] = pingJob(i)
	}
	require.NoError(t, s.rdb.Set(ctx, s.jobKey(jobs[broken].JID), "not a hash", 0).Err())
	const reads = 2 // a GET of a stored job and of a missing one
	queued := whenQueued(s, n-1+reads)

	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = s.create(ctx, jobs[0], s.key("queue")) }()
	<-held.entered // the first create's round trip is on its way
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.create(ctx, jobs[i], s.key("queue")) }()
	}
	var got *exe.Job
	var getErr, missingErr error
	wg.Add(2)
	go func() { defer wg.Done(); got, getErr = s.Get(ctx, stored.JID, false) }()
	go func() { defer wg.Done(); _, missingErr = s.Get(ctx, uuid.NewString(), false) }()
	<-queued
	close(held.release)
	wg.Wait()

	assert.Equal(t, []int{1, n - 1 + reads}, held.Sizes(), "the calls that waited went in one round trip")
	for i, err := range errs {
		if i == broken {
			assert.ErrorIs(t, err, exe.ErrUnavailable, "its script failed: %v", err)
			assert.ErrorContains(t, err, "WRONGTYPE")
			continue
		}
		require.NoError(t, err, "job %d", i)
		j, err := s.Get(ctx, jobs[i].JID, false)
		require.NoError(t, err, "job %d", i)
		assert.Equal(t, jobs[i].Targets, j.Targets, "job %d is its own", i)
		assert.Equal(t, jobs[i].Execute.Cmd, j.Execute.Cmd, "job %d is its own", i)
	}
	require.NoError(t, getErr)
	assert.Equal(t, stored.Targets, got.Targets)
	assert.ErrorIs(t, missingErr, exe.ErrNotFound)

	msgs, err := s.rdb.XRange(ctx, s.key("queue"), "-", "+").Result()
	require.NoError(t, err)
	var want, queuedJIDs []string
	for i, j := range jobs {
		if i != broken {
			want = append(want, j.JID)
		}
	}
	for _, m := range msgs {
		queuedJIDs = append(queuedJIDs, m.Values["jid"].(string))
	}
	assert.ElementsMatch(t, want, queuedJIDs, "every job stored is queued once, the failed one not")
}

// TestCallGivenUpBeforeItIsSent: a call that waits for the next round
// trip and whose context ends returns at once, and is not sent.
func TestCallGivenUpBeforeItIsSent(t *testing.T) {
	s := testStore(t, Options{})
	held := newHeldPipelines()
	s.rdb.AddHook(held)
	first, later := pingJob(1), pingJob(2)
	queued := whenQueued(s, 1)
	done := make(chan error, 1)
	go func() { done <- s.Create(context.Background(), first) }()
	<-held.entered
	ctx, cancel := context.WithCancel(context.Background())
	laterErr := make(chan error, 1)
	go func() { laterErr <- s.Create(ctx, later) }()
	<-queued
	cancel()
	assert.ErrorIs(t, <-laterErr, context.Canceled)
	close(held.release)
	require.NoError(t, <-done)
	_, err := s.Get(context.Background(), later.JID, false)
	assert.ErrorIs(t, err, exe.ErrNotFound, "the call given up was not sent")
	_, err = s.Get(context.Background(), first.JID, false)
	assert.NoError(t, err)
}

// TestBatchedScriptsAfterAScriptFlush: calls that share a round trip
// after Redis lost its scripts (SCRIPT FLUSH, as a restart without
// them) are each run once, their scripts loaded again.
func TestBatchedScriptsAfterAScriptFlush(t *testing.T) {
	s := testStore(t, Options{})
	ctx := context.Background()
	require.NoError(t, s.Create(ctx, pingJob(0)))
	require.NoError(t, s.rdb.ScriptFlush(ctx).Err())
	held := newHeldPipelines()
	s.rdb.AddHook(held)
	const n = 10
	jobs := make([]*exe.Job, n)
	errs := make([]error, n)
	for i := range jobs {
		jobs[i] = pingJob(i)
	}
	queued := whenQueued(s, n-1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = s.create(ctx, jobs[0], s.key("queue")) }()
	<-held.entered
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.create(ctx, jobs[i], s.key("queue")) }()
	}
	<-queued
	close(held.release)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "job %d", i)
		_, err := s.Get(ctx, jobs[i].JID, false)
		require.NoError(t, err, "job %d", i)
	}
	l, err := s.rdb.XLen(ctx, s.key("queue")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, n, l, "each job queued once")
}
