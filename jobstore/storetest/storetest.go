// Package storetest is the conformance suite every exe.JobStore passes:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts storetest.Options) exe.JobStore {
//			return mystore.New(...)
//		})
//	}
//
// It checks creation, listing order, deletion rules, the atomic per-host
// mutex of deploy and task jobs, follow delivery (every event from the first,
// or after a given one, in order, exactly once, under concurrent appends),
// retention and outputs, and, for a store that is an exe.AppendFinisher
// or an exe.UnrunFinisher, its one-step append and finish (and, for the
// latter, that the targets it says it filled are exactly those it gave
// an event, under concurrent appends), and for an exe.AfterFinisher, its
// end after the stored events, known to a retry of the same call.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Options are what a test asks of the store it is given.
type Options struct {
	// Retention is how long the store must keep finished jobs. The suite
	// asks for a short one in the retention test and a long one elsewhere.
	Retention time.Duration
}

// NewStore returns a fresh, empty store for one test. It should register its
// own cleanup with t.Cleanup.
type NewStore func(t *testing.T, opts Options) exe.JobStore

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"CreateGetList", testCreateGetList},
		{"DeleteRules", testDeleteRules},
		{"FinishRules", testFinishRules},
		{"MutexAtomic", testMutexAtomic},
		{"MutexPartialConflictLocksNothing", testMutexPartial},
		{"MutexReleasedOnFinishAndCancel", testMutexReleased},
		{"MutexLocalhostNamesShareALock", testMutexLocalhost},
		{"OutputsGroupedPerHost", testOutputs},
		{"FollowDeliversEverythingOnce", testFollowConcurrent},
		{"FollowFinishedJob", testFollowFinished},
		{"FollowStops", testFollowStops},
		{"FollowFrom", testFollowFrom},
		{"Retention", testRetention},
		{"AppendFinish", testAppendFinish},
		{"FinishAfter", testFinishAfter},
		{"FinishUnrun", testFinishUnrun},
		{"FinishUnrunReportsWhatItFilled", testFinishUnrunFilled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

const long = time.Hour

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newStoreAs makes a store for one test and gives it also as a T, one of
// the interfaces a store may implement to do more (exe.AppendFinisher,
// exe.UnrunFinisher); it skips the test for a store that does not.
func newStoreAs[T any](t *testing.T, newStore NewStore, opts Options) (exe.JobStore, T) {
	t.Helper()
	s := newStore(t, opts)
	x, ok := s.(T)
	if !ok {
		t.Skipf("the store is not an %v", reflect.TypeFor[T]())
	}
	return s, x
}

func newJob(op exe.Operate, targets ...string) *exe.Job {
	j := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: op, Targets: targets}, User: "user-" + string(op)}
	switch op {
	case exe.OpExecute:
		j.Execute = exe.ExecuteArgs{Cmd: "uname -a"}
	case exe.OpDeploy:
		j.Deploy = exe.DeployArgs{Role: "nginx", Partial: []string{"reconfig"}, ExtraVars: map[string]any{"port": 8080.0}}
	case exe.OpService:
		j.Service = exe.ServiceArgs{Name: "nginx", State: exe.ServiceRestarted, Graceful: true}
	case exe.OpTask:
		j.Task = exe.TaskArgs{Name: "rr", Type: "rollingrestart", Options: map[string]any{"service": "nginx"}}
	}
	return j
}

func testCreateGetList(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})

	ids, err := s.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids)

	var created []*exe.Job
	for i, op := range []exe.Operate{exe.OpExecute, exe.OpDeploy, exe.OpService, exe.OpTask, exe.OpPing} {
		j := newJob(op, fmt.Sprintf("a%d.example", i), "b.example")
		if op == exe.OpTask {
			j.Targets = []string{"c.example"} // the deploy holds b.example
		}
		require.NoError(t, s.Create(ctx, j))
		created = append(created, j)
	}
	for _, want := range created {
		got, err := s.Get(ctx, want.JID, false)
		require.NoError(t, err)
		assert.Equal(t, want.JID, got.JID)
		assert.Equal(t, exe.JobRunning, got.State)
		assert.Equal(t, want.StartAt, got.StartAt)
		assert.Zero(t, got.EndAt)
		assert.Equal(t, want.Request, got.Request, "the request must round-trip unchanged")
		assert.Equal(t, want.User, got.User, "the job's owner must round-trip unchanged")
		assert.Empty(t, got.ReturnData)
	}
	ids, err = s.List(ctx)
	require.NoError(t, err)
	require.Len(t, ids, len(created))
	for i, id := range ids {
		assert.Equal(t, created[len(created)-1-i].JID, id, "List must be newest first")
	}

	_, err = s.Get(ctx, uuid.NewString(), false)
	assert.ErrorIs(t, err, exe.ErrNotFound)
	assert.Error(t, s.Create(ctx, created[0]), "a JID can be created once")
}

func testDeleteRules(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpExecute, "a")
	require.NoError(t, s.Create(ctx, j))
	require.NoError(t, s.Append(ctx, j.JID, exe.Event{Host: "a", Status: exe.HostChanged}))

	assert.ErrorIs(t, s.Delete(ctx, j.JID), exe.ErrRunning)
	_, err := s.Get(ctx, j.JID, false)
	require.NoError(t, err, "a refused delete changes nothing")

	require.NoError(t, s.Finish(ctx, j.JID, exe.JobDone, ""))
	require.NoError(t, s.Delete(ctx, j.JID))
	_, err = s.Get(ctx, j.JID, true)
	assert.ErrorIs(t, err, exe.ErrNotFound)
	ids, err := s.List(ctx)
	require.NoError(t, err)
	assert.NotContains(t, ids, j.JID)
	assert.ErrorIs(t, s.Delete(ctx, j.JID), exe.ErrNotFound)
}

func testFinishRules(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpExecute, "a", "b")
	require.NoError(t, s.Create(ctx, j))
	before := time.Now().Unix()
	require.NoError(t, s.Finish(ctx, j.JID, exe.JobFailure, "1 of 2 hosts failed"))
	got, err := s.Get(ctx, j.JID, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, got.State)
	assert.Equal(t, "1 of 2 hosts failed", got.Error)
	assert.GreaterOrEqual(t, got.EndAt, before)
	assert.Equal(t, j.User, got.User, "an ended job keeps its owner")

	assert.ErrorIs(t, s.Finish(ctx, j.JID, exe.JobDone, ""), exe.ErrFinished, "finishing twice")
	assert.ErrorIs(t, s.Append(ctx, j.JID, exe.Event{Host: "a", Status: exe.HostOK}), exe.ErrFinished,
		"a finished job takes no more events")
	assert.ErrorIs(t, s.Finish(ctx, uuid.NewString(), exe.JobDone, ""), exe.ErrNotFound)
	assert.ErrorIs(t, s.Append(ctx, uuid.NewString(), exe.Event{Host: "a"}), exe.ErrNotFound)
	got, err = s.Get(ctx, j.JID, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, got.State, "refused calls change nothing")
}

func testMutexAtomic(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	const n = 100
	var (
		wins      atomic.Int32
		conflicts atomic.Int32
		winner    atomic.Value
		start     = make(chan struct{})
		wg        sync.WaitGroup
		errs      = make(chan error, n)
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Every job shares "shared" and one neighbour with the next one.
			op := exe.OpDeploy
			if i%2 == 1 {
				op = exe.OpTask
			}
			j := newJob(op, fmt.Sprintf("h%03d", i), "shared", fmt.Sprintf("h%03d", (i+1)%n))
			<-start
			err := s.Create(ctx, j)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(j.JID)
			case errors.Is(err, exe.ErrConflict):
				conflicts.Add(1)
				var ce *exe.ConflictError
				if errors.As(err, &ce) && (ce.Host == "" || ce.JID == "") {
					errs <- fmt.Errorf("conflict must name host and job: %v", err)
				}
			default:
				errs <- err
			}
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.EqualValues(t, 1, wins.Load(), "exactly one deploy may hold the hosts")
	assert.EqualValues(t, n-1, conflicts.Load())

	// Non-mutex operations never conflict.
	require.NoError(t, s.Create(ctx, newJob(exe.OpExecute, "shared")))
	require.NoError(t, s.Create(ctx, newJob(exe.OpService, "shared")))
	// The holder is named.
	err := s.Create(ctx, newJob(exe.OpDeploy, "shared"))
	var ce *exe.ConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "shared", ce.Host)
	assert.Equal(t, winner.Load(), ce.JID)
}

func testMutexPartial(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	require.NoError(t, s.Create(ctx, newJob(exe.OpDeploy, "h2")))
	// h1 is free, h2 is held: the job is refused and must not keep h1.
	assert.ErrorIs(t, s.Create(ctx, newJob(exe.OpDeploy, "h1", "h2")), exe.ErrConflict)
	require.NoError(t, s.Create(ctx, newJob(exe.OpTask, "h1")), "a refused job locks nothing")
}

// testMutexLocalhost: Ansible's names of localhost name one machine (the
// implicit localhost is named after whichever a request uses), so they
// take one lock (exe.LockKey): a job on one of them holds the others, a
// job naming two of them holds its key once, and the end of the job
// frees them all. The conflict names the target the refused job gave.
func testMutexLocalhost(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpDeploy, "127.0.0.1", "web1")
	require.NoError(t, s.Create(ctx, j))
	for _, name := range []string{"localhost", "::1", "127.0.0.1"} {
		err := s.Create(ctx, newJob(exe.OpTask, "db1", name))
		var ce *exe.ConflictError
		require.ErrorAs(t, err, &ce, name)
		assert.Equal(t, name, ce.Host)
		assert.Equal(t, j.JID, ce.JID)
	}
	require.NoError(t, s.Create(ctx, newJob(exe.OpExecute, "localhost")), "only mutex jobs lock")
	require.NoError(t, s.Finish(ctx, j.JID, exe.JobDone, ""))

	both := newJob(exe.OpDeploy, "localhost", "::1")
	require.NoError(t, s.Create(ctx, both), "a job's own targets never conflict")
	require.ErrorIs(t, s.Create(ctx, newJob(exe.OpDeploy, "127.0.0.1")), exe.ErrConflict)
	require.NoError(t, s.Finish(ctx, both.JID, exe.JobFailure, exe.ErrCancelled.Error()))
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "db1"} {
		j := newJob(exe.OpDeploy, name)
		require.NoError(t, s.Create(ctx, j), "%s must be released", name)
		require.NoError(t, s.Finish(ctx, j.JID, exe.JobDone, ""))
	}
}

func testMutexReleased(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	hosts := []string{"a", "b", "c"}
	for _, end := range []struct {
		state exe.JobState
		msg   string
	}{{exe.JobDone, ""}, {exe.JobFailure, "1 of 3 hosts failed"}, {exe.JobFailure, exe.ErrCancelled.Error()}} {
		j := newJob(exe.OpDeploy, hosts...)
		require.NoError(t, s.Create(ctx, j))
		require.ErrorIs(t, s.Create(ctx, newJob(exe.OpDeploy, "c")), exe.ErrConflict)
		require.NoError(t, s.Finish(ctx, j.JID, end.state, end.msg))
	}
	// After the last finish every host is free again.
	for _, h := range hosts {
		j := newJob(exe.OpTask, h)
		require.NoError(t, s.Create(ctx, j), "host %s must be released", h)
		require.NoError(t, s.Finish(ctx, j.JID, exe.JobDone, ""))
	}
}

func testOutputs(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpDeploy, "a", "b")
	require.NoError(t, s.Create(ctx, j))
	rtc := &exe.ExecResult{RTC: 0, Stdout: "hi\n"}
	in := []exe.Event{
		{Host: exe.AnnounceHost, Status: exe.HostAnnounce, Name: "play"},
		{Host: "a", Status: exe.HostOK, Name: "step1"},
		{Host: "b", Status: exe.HostChanged, Name: "step1", Exec: rtc},
		{Host: exe.AnnounceHost, Status: exe.HostAnnounce, Name: "step2"},
		{Host: "b", Status: exe.HostFailed, Name: "step2", Msg: "boom", Truncated: true},
		{Host: "a", Status: exe.HostChanged, Name: "step2", Facts: map[string]any{"k": "v"}, Extra: map[string]any{"x": 1.0}},
	}
	require.NoError(t, s.Append(ctx, j.JID, in[0], in[1]))
	for _, ev := range in[2:] {
		require.NoError(t, s.Append(ctx, j.JID, ev))
	}
	got, err := s.Get(ctx, j.JID, false)
	require.NoError(t, err)
	assert.Empty(t, got.ReturnData, "no outputs unless asked")

	got, err = s.Get(ctx, j.JID, true)
	require.NoError(t, err)
	require.Len(t, got.ReturnData, 3)
	want := map[string][]exe.Event{}
	for i, ev := range in {
		ev.Seq = int64(i + 1)
		want[ev.Host] = append(want[ev.Host], ev)
	}
	assert.Equal(t, want, got.ReturnData)
}

// testFollowConcurrent starts followers before, during and after a burst of
// concurrent appends; each must see 1..n once, in order, then the end.
func testFollowConcurrent(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpExecute, "a", "b", "c")
	require.NoError(t, s.Create(ctx, j))

	const n = 600
	type result struct {
		seqs []int64
		job  *exe.Job
		err  error
	}
	results := make(chan result, 16)
	var launched atomic.Int32
	follow := func() {
		var r result
		r.job, r.err = s.Follow(ctx, j.JID, 0, func(ev exe.Event) error {
			r.seqs = append(r.seqs, ev.Seq)
			return nil
		})
		results <- r
	}
	// spawn counts a follower before it starts, so the count is complete
	// once the appenders are done.
	spawn := func() { launched.Add(1); go follow() }
	spawn() // before the first event

	// Three appenders race; followers join at fixed points of the count.
	var appended atomic.Int64
	var wg sync.WaitGroup
	hosts := []string{"a", "b", "c"}
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n/3; i++ {
				if err := s.Append(ctx, j.JID, exe.Event{Host: hosts[w], Status: exe.HostOK, Msg: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
				if c := appended.Add(1); c%(n/5) == 0 && c < n {
					spawn() // mid-stream
				}
			}
		}(w)
	}
	wg.Wait()
	require.NoError(t, s.Finish(ctx, j.JID, exe.JobDone, ""))
	spawn() // after the end

	followers := int(launched.Load())
	require.GreaterOrEqual(t, followers, 5, "followers before, during and after the appends")
	for i := 0; i < followers; i++ {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			t.Fatalf("only %d of %d followers returned", i, followers)
		}
		require.NoError(t, r.err)
		require.Len(t, r.seqs, n, "follower %d must see every event", i)
		for k, seq := range r.seqs {
			require.Equal(t, int64(k+1), seq, "follower %d: events in order, exactly once", i)
		}
		require.NotNil(t, r.job)
		assert.Equal(t, exe.JobDone, r.job.State, "follow returns the final job")
	}
}

func testFollowFinished(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpPing, "a")
	require.NoError(t, s.Create(ctx, j))
	require.NoError(t, s.Append(ctx, j.JID, exe.Event{Host: "a", Status: exe.HostUnreachable, Msg: "refused"}))
	require.NoError(t, s.Finish(ctx, j.JID, exe.JobFailure, "1 of 1 hosts failed"))
	var got []exe.Event
	final, err := s.Follow(ctx, j.JID, 0, func(ev exe.Event) error { got = append(got, ev); return nil })
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "a", got[0].Host)
	assert.Equal(t, "refused", got[0].Msg)
	assert.Equal(t, exe.JobFailure, final.State)
	assert.Equal(t, "1 of 1 hosts failed", final.Error)

	_, err = s.Follow(ctx, uuid.NewString(), 0, func(exe.Event) error { return nil })
	assert.ErrorIs(t, err, exe.ErrNotFound)
}

func testFollowStops(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpPing, "a")
	require.NoError(t, s.Create(ctx, j))
	require.NoError(t, s.Append(ctx, j.JID, exe.Event{Host: "a", Status: exe.HostOK}))

	// fn's error stops the follow.
	stop := errors.New("client went away")
	_, err := s.Follow(ctx, j.JID, 0, func(exe.Event) error { return stop })
	assert.ErrorIs(t, err, stop)

	// Cancelling ctx stops a follow that is waiting for events.
	fctx, cancel := context.WithCancel(ctx)
	delivered := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := s.Follow(fctx, j.JID, 0, func(exe.Event) error { close(delivered); return nil })
		done <- err
	}()
	<-delivered // the follower has caught up and is now waiting
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return after its context was cancelled")
	}
}

// testFollowFrom follows from several events of a job: before and past
// the events stored so far, across the store's pages, while it runs and
// once it has ended. A follow from k gets exactly the events k+1..n, each
// with its Seq and its own content.
func testFollowFrom(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s := newStore(t, Options{Retention: long})
	j := newJob(exe.OpExecute, "a", "b")
	require.NoError(t, s.Create(ctx, j))
	const (
		first = 2500 // stored before the running follows start
		n     = 3000
	)
	appendUpTo := func(from, to int) {
		for i := from; i < to; {
			batch := make([]exe.Event, 0, 500)
			for ; i < to && len(batch) < cap(batch); i++ {
				// Msg is the event's Seq: a follow that skipped the
				// wrong events would pair them with the wrong numbers.
				batch = append(batch, exe.Event{Host: []string{"a", "b"}[i%2], Status: exe.HostOK, Msg: fmt.Sprint(i + 1)})
			}
			require.NoError(t, s.Append(ctx, j.JID, batch...))
		}
	}
	appendUpTo(0, first)

	type result struct {
		from int64
		seqs []int64
		job  *exe.Job
		err  error
	}
	// A BatchFollower's follows alternate between Follow and FollowBatches.
	bf, batches := s.(exe.BatchFollower)
	var nfollow int
	follow := func(from int64, out chan<- result) {
		r := result{from: from}
		each := func(ev exe.Event) error {
			if ev.Msg != fmt.Sprint(ev.Seq) {
				return fmt.Errorf("event %d holds the content of event %s", ev.Seq, ev.Msg)
			}
			r.seqs = append(r.seqs, ev.Seq)
			return nil
		}
		nfollow++
		if batches && nfollow%2 == 0 {
			go func() {
				r.job, r.err = bf.FollowBatches(ctx, j.JID, from, func(batch []exe.Event) error {
					if len(batch) == 0 {
						return errors.New("an empty batch")
					}
					for _, ev := range batch {
						if err := each(ev); err != nil {
							return err
						}
					}
					return nil
				})
				out <- r
			}()
			return
		}
		go func() {
			r.job, r.err = s.Follow(ctx, j.JID, from, each)
			out <- r
		}()
	}
	check := func(r result) {
		t.Helper()
		require.NoError(t, r.err, "from %d", r.from)
		want := []int64{}
		for seq := r.from + 1; seq <= n; seq++ {
			want = append(want, seq)
		}
		if len(r.seqs) == 0 {
			r.seqs = []int64{}
		}
		require.Equal(t, want, r.seqs, "from %d: the events after it, in order, exactly once", r.from)
		require.NotNil(t, r.job)
		assert.Equal(t, exe.JobDone, r.job.State, "from %d: the final job", r.from)
	}
	froms := []int64{1, 999, 1000, 1001, 2499, first, first + 1, 2750, n, n + 10}
	running := make(chan result, len(froms))
	for _, from := range froms {
		follow(from, running)
	}
	appendUpTo(first, n)
	require.NoError(t, s.Finish(ctx, j.JID, exe.JobDone, ""))
	for range froms {
		select {
		case r := <-running:
			check(r)
		case <-ctx.Done():
			t.Fatal("a follow did not return once the job ended")
		}
	}
	ended := make(chan result, 1)
	for _, from := range froms {
		follow(from, ended)
		check(<-ended)
	}
}

func testRetention(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	const retention = 300 * time.Millisecond
	s := newStore(t, Options{Retention: retention})
	done := newJob(exe.OpExecute, "a")
	running := newJob(exe.OpDeploy, "a")
	require.NoError(t, s.Create(ctx, done))
	require.NoError(t, s.Create(ctx, running))
	require.NoError(t, s.Append(ctx, done.JID, exe.Event{Host: "a", Status: exe.HostChanged}))
	require.NoError(t, s.Finish(ctx, done.JID, exe.JobDone, ""))

	require.Eventually(t, func() bool {
		_, err := s.Get(ctx, done.JID, true)
		return errors.Is(err, exe.ErrNotFound)
	}, 20*time.Second, 20*time.Millisecond, "a finished job must expire after the retention period")
	ids, err := s.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{running.JID}, ids, "only the running job is left")

	got, err := s.Get(ctx, running.JID, false)
	require.NoError(t, err, "running jobs never expire")
	assert.Equal(t, exe.JobRunning, got.State)
	// Its lock is still held.
	assert.ErrorIs(t, s.Create(ctx, newJob(exe.OpDeploy, "a")), exe.ErrConflict)
}

// testAppendFinish stores a job's last events and ends it in one call
// (exe.AppendFinisher; skipped for stores without it): a follower waiting
// on the job sees every event once, in order, then the end; events the
// store already holds are skipped by Seq, as a retried call sends them;
// the job's locks are released; a finished or unknown job takes nothing.
func testAppendFinish(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s, af := newStoreAs[exe.AppendFinisher](t, newStore, Options{Retention: long})
	j := newJob(exe.OpDeploy, "a", "b")
	require.NoError(t, s.Create(ctx, j))
	ev := func(seq int64, host string, st exe.HostStatus) exe.Event {
		return exe.Event{Seq: seq, Host: host, Status: st, Name: fmt.Sprint("step", seq)}
	}
	require.NoError(t, s.Append(ctx, j.JID, ev(1, "a", exe.HostOK), ev(2, "b", exe.HostOK)))

	type followed struct {
		events []exe.Event
		final  *exe.Job
		err    error
	}
	got := make(chan followed, 1)
	delivered := make(chan struct{})
	go func() {
		var f followed
		f.final, f.err = s.Follow(ctx, j.JID, 0, func(e exe.Event) error {
			f.events = append(f.events, e)
			if len(f.events) == 2 {
				close(delivered)
			}
			return nil
		})
		got <- f
	}()
	<-delivered // the follower waits for more

	before := time.Now().Unix()
	// Events 2 and 3 again, as a call retried after its reply was lost
	// sends them: stored once.
	require.NoError(t, af.AppendFinish(ctx, j.JID, exe.JobFailure, "1 of 2 hosts failed",
		ev(2, "b", exe.HostOK), ev(3, "a", exe.HostChanged), ev(4, "b", exe.HostFailed)))
	f := <-got
	require.NoError(t, f.err)
	want := []exe.Event{ev(1, "a", exe.HostOK), ev(2, "b", exe.HostOK), ev(3, "a", exe.HostChanged), ev(4, "b", exe.HostFailed)}
	assert.Equal(t, want, f.events, "every event once, in order, then the end")
	assert.Equal(t, exe.JobFailure, f.final.State)
	assert.Equal(t, "1 of 2 hosts failed", f.final.Error)

	job, err := s.Get(ctx, j.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.GreaterOrEqual(t, job.EndAt, before)
	assert.Equal(t, map[string][]exe.Event{"a": {want[0], want[2]}, "b": {want[1], want[3]}}, job.ReturnData)
	require.NoError(t, s.Create(ctx, newJob(exe.OpDeploy, "a", "b")), "the job's locks are released")

	assert.ErrorIs(t, af.AppendFinish(ctx, j.JID, exe.JobDone, "", ev(5, "a", exe.HostOK)), exe.ErrFinished)
	assert.ErrorIs(t, af.AppendFinish(ctx, uuid.NewString(), exe.JobDone, "", ev(1, "a", exe.HostOK)), exe.ErrNotFound)
	job, err = s.Get(ctx, j.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State, "refused calls change nothing")
	assert.Len(t, job.ReturnData["a"], 2)

	// Events without numbers are stored as Append stores them.
	k := newJob(exe.OpPing, "c")
	require.NoError(t, s.Create(ctx, k))
	require.NoError(t, af.AppendFinish(ctx, k.JID, exe.JobDone, "", exe.Event{Host: "c", Status: exe.HostOK}))
	job, err = s.Get(ctx, k.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, job.State)
	assert.Equal(t, []exe.Event{{Seq: 1, Host: "c", Status: exe.HostOK}}, job.ReturnData["c"])
}

// testFinishAfter ends a job whose events are stored (exe.AfterFinisher;
// skipped for stores without it): the events stay as they were, once
// each, a follower sees them then the end, the locks are released; the
// same call again finds the job ended by itself (nil), another one
// (another Seq) ErrFinished; an unknown job is ErrNotFound.
func testFinishAfter(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s, fa := newStoreAs[exe.AfterFinisher](t, newStore, Options{Retention: long})
	j := newJob(exe.OpDeploy, "a", "b")
	require.NoError(t, s.Create(ctx, j))
	evs := []exe.Event{{Seq: 1, Host: "a", Status: exe.HostOK}, {Seq: 2, Host: "b", Status: exe.HostFailed}}
	require.NoError(t, s.Append(ctx, j.JID, evs...))

	before := time.Now().Unix()
	require.NoError(t, fa.FinishAfter(ctx, j.JID, exe.JobFailure, "1 of 2 hosts failed", 2))
	require.NoError(t, fa.FinishAfter(ctx, j.JID, exe.JobFailure, "1 of 2 hosts failed", 2), "the same call again, after a lost reply")
	assert.ErrorIs(t, fa.FinishAfter(ctx, j.JID, exe.JobDone, "", 3), exe.ErrFinished, "another call")
	assert.ErrorIs(t, s.Finish(ctx, j.JID, exe.JobDone, ""), exe.ErrFinished)
	assert.ErrorIs(t, fa.FinishAfter(ctx, uuid.NewString(), exe.JobDone, "", 1), exe.ErrNotFound)

	var seen []exe.Event
	job, err := s.Follow(ctx, j.JID, 0, func(e exe.Event) error { seen = append(seen, e); return nil })
	require.NoError(t, err)
	assert.Equal(t, evs, seen, "the events once each, then the end")
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "1 of 2 hosts failed", job.Error)
	assert.GreaterOrEqual(t, job.EndAt, before)
	require.NoError(t, s.Create(ctx, newJob(exe.OpDeploy, "a", "b")), "the job's locks are released")
}

// testFinishUnrun ends a job no Runner will finish in one call
// (exe.UnrunFinisher; skipped for stores without it): each target without
// an event gets the fill event, once, however many end the job at once
// (one of them does, and says which targets it filled; the others get
// ErrFinished); hosts with events keep them; a follower sees the events,
// then the end; the job's locks are released; an unknown job is
// ErrNotFound.
func testFinishUnrun(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s, uf := newStoreAs[exe.UnrunFinisher](t, newStore, Options{Retention: long})
	j := newJob(exe.OpDeploy, "a", "b", "c")
	require.NoError(t, s.Create(ctx, j))
	ran := exe.Event{Host: "b", Status: exe.HostOK, Name: "ran"}
	require.NoError(t, s.Append(ctx, j.JID, ran))

	followed := make(chan []exe.Event, 1)
	go func() {
		var evs []exe.Event
		final, err := s.Follow(ctx, j.JID, 0, func(e exe.Event) error { evs = append(evs, e); return nil })
		assert.NoError(t, err)
		if assert.NotNil(t, final) {
			assert.Equal(t, exe.JobFailure, final.State)
		}
		followed <- evs
	}()

	fill := exe.Event{Host: "ignored", Seq: 99, Status: exe.HostSkipped, Msg: "cancelled before start"}
	const callers = 8
	type answer struct {
		filled []string
		err    error
	}
	answers := make(chan answer, callers)
	var start sync.WaitGroup
	start.Add(1)
	for range callers {
		go func() {
			start.Wait()
			filled, err := uf.FinishUnrun(ctx, j.JID, "cancelled", fill)
			answers <- answer{filled, err}
		}()
	}
	start.Done()
	ended := 0
	for range callers {
		a := <-answers
		if a.err == nil {
			ended++
			assert.Equal(t, []string{"a", "c"}, a.filled, "the targets without an event, in target order")
		} else {
			assert.ErrorIs(t, a.err, exe.ErrFinished)
			assert.Nil(t, a.filled)
		}
	}
	assert.Equal(t, 1, ended, "one call ends the job")

	want := map[string][]exe.Event{
		"a": {{Seq: 2, Host: "a", Status: exe.HostSkipped, Msg: "cancelled before start"}},
		"b": {{Seq: 1, Host: "b", Status: exe.HostOK, Name: "ran"}},
		"c": {{Seq: 3, Host: "c", Status: exe.HostSkipped, Msg: "cancelled before start"}},
	}
	job, err := s.Get(ctx, j.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	assert.Equal(t, want, job.ReturnData, "one event per target: those it had, the fill for the others")
	assert.Equal(t, []exe.Event{want["b"][0], want["a"][0], want["c"][0]}, <-followed)
	require.NoError(t, s.Create(ctx, newJob(exe.OpDeploy, "a", "b", "c")), "the job's locks are released")
	_, err = uf.FinishUnrun(ctx, uuid.NewString(), "cancelled", fill)
	assert.ErrorIs(t, err, exe.ErrNotFound)
}

// testFinishUnrunFilled ends jobs while every target but one gets an
// event appended at the same moment (exe.UnrunFinisher; skipped for
// stores without it): whichever lands first, the targets the ending call
// says it filled are exactly those whose one stored event is the fill;
// every other target holds only its appended event, whose append was
// stored; an append that came too late was refused (ErrFinished). So a
// caller that reports the filled targets reports what is stored, not
// what a read before the call saw.
func testFinishUnrunFilled(t *testing.T, newStore NewStore) {
	ctx := ctxT(t)
	s, uf := newStoreAs[exe.UnrunFinisher](t, newStore, Options{Retention: long})
	const rounds, hosts, enders = 20, 16, 2
	fill := exe.Event{Status: exe.HostSkipped, Msg: "cancelled before start"}
	someFilled, someAppended := false, false
	for round := range rounds {
		targets := make([]string, hosts)
		for i := range targets {
			targets[i] = fmt.Sprintf("h%02d", i)
		}
		j := newJob(exe.OpExecute, targets...)
		require.NoError(t, s.Create(ctx, j))

		var start, wg sync.WaitGroup
		start.Add(1)
		stored := make([]bool, hosts) // by target: its append was stored
		for i, h := range targets[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				err := s.Append(ctx, j.JID, exe.Event{Host: h, Status: exe.HostChanged, Name: "ran"})
				if err == nil {
					stored[i+1] = true
				} else {
					assert.ErrorIs(t, err, exe.ErrFinished, "round %d, %s", round, h)
				}
			}()
		}
		var filled [][]string
		var mu sync.Mutex
		for range enders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				f, err := uf.FinishUnrun(ctx, j.JID, "cancelled", fill)
				if err != nil {
					assert.ErrorIs(t, err, exe.ErrFinished, "round %d", round)
					return
				}
				mu.Lock()
				filled = append(filled, f)
				mu.Unlock()
			}()
		}
		start.Done()
		wg.Wait()
		require.Len(t, filled, 1, "round %d: one call ends the job", round)

		job, err := s.Get(ctx, j.JID, true)
		require.NoError(t, err)
		var want []string // the targets whose stored event is the fill
		for i, h := range targets {
			evs := job.ReturnData[h]
			require.Len(t, evs, 1, "round %d, %s: one event per target", round, h)
			if evs[0].Status == fill.Status && evs[0].Msg == fill.Msg {
				want = append(want, h)
				assert.False(t, stored[i], "round %d, %s: filled, so its append was refused", round, h)
			} else {
				assert.Equal(t, "ran", evs[0].Name, "round %d, %s", round, h)
				assert.True(t, stored[i], "round %d, %s: its append was stored", round, h)
			}
		}
		assert.Equal(t, want, filled[0], "round %d: the targets filled, as stored, in target order", round)
		someFilled = someFilled || len(want) > 1
		someAppended = someAppended || len(want) < hosts
	}
	t.Logf("over %d rounds, appends stored before the end: %v; refused after it: %v", rounds, someAppended, someFilled)
}
