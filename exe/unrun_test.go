package exe_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingObserver counts the host results and job ends it is told of.
type countingObserver struct {
	exe.NoObserver
	mu    sync.Mutex
	hosts map[exe.HostStatus]int
	ended map[exe.JobState]int
}

func newCountingObserver() *countingObserver {
	return &countingObserver{hosts: map[exe.HostStatus]int{}, ended: map[exe.JobState]int{}}
}

func (o *countingObserver) HostResult(_ exe.Operate, st exe.HostStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hosts[st]++
}

func (o *countingObserver) JobEnded(_ exe.Operate, st exe.JobState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended[st]++
}

func (o *countingObserver) counts() (map[exe.HostStatus]int, map[exe.JobState]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	hosts, ended := map[exe.HostStatus]int{}, map[exe.JobState]int{}
	for k, v := range o.hosts {
		hosts[k] = v
	}
	for k, v := range o.ended {
		ended[k] = v
	}
	return hosts, ended
}

// storedCounts is what store holds: the events of every job by status
// (AnnounceHost's left out, as the Observer is never told of them), and
// the ended jobs by state.
func storedCounts(t *testing.T, store exe.JobStore) (map[exe.HostStatus]int, map[exe.JobState]int) {
	t.Helper()
	ctx := context.Background()
	ids, err := store.List(ctx)
	require.NoError(t, err)
	hosts, ended := map[exe.HostStatus]int{}, map[exe.JobState]int{}
	for _, id := range ids {
		job, err := store.Get(ctx, id, true)
		require.NoError(t, err)
		for h, evs := range job.ReturnData {
			if h == exe.AnnounceHost {
				continue
			}
			for _, ev := range evs {
				hosts[ev.Status]++
			}
		}
		if job.Finished() {
			ended[job.State]++
		}
	}
	return hosts, ended
}

// landingStore is a memory store on which something lands just before a
// FinishUnrun of the job landOn: land runs, then the call goes on to the
// store. It stands for a worker elsewhere that takes the job and stores
// its events between the moment its canceller (or a shutdown) read the
// job and the moment it ends it, without any sleep to open that window.
type landingStore struct {
	*memory.Store
	landOn string
	land   func(ctx context.Context)
	// stored is signalled (coalesced) after each Append the store took.
	stored chan struct{}
}

func newLandingStore() *landingStore {
	return &landingStore{Store: memory.New(memory.Options{}), stored: make(chan struct{}, 1)}
}

func (s *landingStore) FinishUnrun(ctx context.Context, jid, msg string, fill exe.Event) ([]string, error) {
	if jid == s.landOn && s.land != nil {
		s.land(ctx)
	}
	return s.Store.FinishUnrun(ctx, jid, msg, fill)
}

func (s *landingStore) Append(ctx context.Context, jid string, events ...exe.Event) error {
	err := s.Store.Append(ctx, jid, events...)
	if err == nil {
		select {
		case s.stored <- struct{}{}:
		default:
		}
	}
	return err
}

// waitStored waits until the job holds an event for each of hosts.
func (s *landingStore) waitStored(ctx context.Context, t *testing.T, jid string, hosts ...string) {
	t.Helper()
	for {
		job, err := s.Store.Get(ctx, jid, true)
		require.NoError(t, err)
		missing := 0
		for _, h := range hosts {
			if len(job.ReturnData[h]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-s.stored:
		case <-ctx.Done():
			t.Fatalf("the events of %v were not stored: %v", hosts, ctx.Err())
		}
	}
}

// heldExecutor reports CHANGED for each of hosts (whatever the targets:
// those a worker got to), then holds its operation until release is
// closed or its context ends, as a command still running on the other
// targets would.
type heldExecutor struct {
	exe.Executor
	hosts   []string
	release chan struct{}
}

func (x heldExecutor) Execute(ctx context.Context, _ []string, _ exe.ExecuteArgs, emit exe.Emit) error {
	for _, h := range x.hosts {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Name: "ran"})
	}
	select {
	case <-x.release:
	case <-ctx.Done():
	}
	return nil
}

// workerElsewhere makes store's land run the job with a Runner of its
// own reporting to obs (a worker that took it meanwhile), which reports
// ran, and wait until their events are stored. The run is held until
// release is closed; done gets its error.
func workerElsewhere(store *landingStore, t *testing.T, obs exe.Observer, ran []string) (release chan struct{}, done chan error) {
	release, done = make(chan struct{}), make(chan error, 1)
	store.land = func(ctx context.Context) {
		r := &exe.Runner{Store: store, Executor: heldExecutor{Executor: &plugintest.Executor{}, hosts: ran, release: release}, Observer: obs}
		go func() { done <- r.Run(context.Background(), store.landOn) }()
		store.waitStored(ctx, t, store.landOn, ran...)
	}
	return release, done
}

// A queued job is cancelled while a worker elsewhere takes it and stores
// some or all of its hosts' results, after the cancel read the job and
// before it ended it: the metrics count what the store holds (the
// results the worker stored, SKIPPED for the hosts the end filled), not
// what the cancel's read saw (no event, so every host SKIPPED), nor the
// events the worker's Runner then gave its silent hosts, which the store
// refused (the job had ended).
func TestCancelCountsWhatItStored(t *testing.T) {
	for _, ran := range [][]string{{"a", "b", "c"}, {"b"}} {
		t.Run(strings.Join(ran, ""), func(t *testing.T) { testCancelCountsWhatItStored(t, ran) })
	}
}

func testCancelCountsWhatItStored(t *testing.T, ran []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := newLandingStore()
	obs := newCountingObserver()
	engine, err := exe.NewEngine(exe.Config{Store: store, Executor: &plugintest.Executor{},
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: 1}), Observer: obs})
	require.NoError(t, err)
	t.Cleanup(func() { _ = engine.Shutdown(context.Background()) })

	// The one worker here runs a job that waits for its cancel: the next
	// one waits in the queue.
	blocker, err := engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "block"}})
	require.NoError(t, err)
	errStarted := errors.New("started")
	_, err = engine.Follow(ctx, blocker, func(exe.Event) error { return errStarted })
	require.ErrorIs(t, err, errStarted)
	hosts := []string{"a", "b", "c"}
	queued, err := engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: "echo"}})
	require.NoError(t, err)

	store.landOn = queued
	release, done := workerElsewhere(store, t, obs, ran)
	job, err := engine.Cancel(ctx, queued)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	close(release)
	require.NoError(t, <-done)
	assertKeptOrFilled(t, store, queued, hosts, ran, "cancelled before start")

	_, err = engine.Cancel(ctx, blocker)
	require.NoError(t, err)
	require.NoError(t, engine.Shutdown(ctx)) // every Runner here has returned
	wantHosts, wantEnded := storedCounts(t, store)
	gotHosts, gotEnded := obs.counts()
	assert.Equal(t, wantHosts, gotHosts, "host results counted: those stored")
	assert.Equal(t, wantEnded, gotEnded, "job ends counted: those stored")
}

// assertKeptOrFilled checks that each of the job's hosts holds one
// event: the result the worker stored for those of ran, the fill (msg)
// for the others.
func assertKeptOrFilled(t *testing.T, store exe.JobStore, jid string, hosts, ran []string, msg string) {
	t.Helper()
	stored, err := store.Get(context.Background(), jid, true)
	require.NoError(t, err)
	for _, h := range hosts {
		if !assert.Len(t, stored.ReturnData[h], 1, h) {
			continue
		}
		if slices.Contains(ran, h) {
			assert.Equal(t, "ran", stored.ReturnData[h][0].Name, "%s keeps the result the worker stored", h)
		} else {
			assert.Equal(t, msg, stored.ReturnData[h][0].Msg, "%s is filled", h)
		}
	}
}

// Runner.Skip (a job queued at shutdown) while a worker elsewhere takes
// the job and stores some or all of its hosts' results between Skip's
// read and its end: the metrics count what the store holds.
func TestSkipCountsWhatItStored(t *testing.T) {
	for _, ran := range [][]string{{"a", "b", "c"}, {"b"}} {
		t.Run(strings.Join(ran, ""), func(t *testing.T) { testSkipCountsWhatItStored(t, ran) })
	}
}

func testSkipCountsWhatItStored(t *testing.T, ran []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := newLandingStore()
	obs := newCountingObserver()
	hosts := []string{"a", "b", "c"}
	job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: "echo"}}}
	require.NoError(t, store.Create(ctx, job))

	store.landOn = job.JID
	release, done := workerElsewhere(store, t, obs, ran)
	r := &exe.Runner{Store: store, Executor: &plugintest.Executor{}, Observer: obs}
	require.NoError(t, r.Skip(ctx, job.JID, exe.ErrShutdown))
	close(release)
	require.NoError(t, <-done)

	stored, err := store.Get(ctx, job.JID, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, stored.State)
	assert.Equal(t, "server shutdown", stored.Error)
	assertKeptOrFilled(t, store, job.JID, hosts, ran, "not started: server shutdown")
	wantHosts, wantEnded := storedCounts(t, store)
	gotHosts, gotEnded := obs.counts()
	assert.Equal(t, wantHosts, gotHosts, "host results counted: those stored")
	assert.Equal(t, wantEnded, gotEnded, "job ends counted: those stored")
}

// endingStore is a memory store whose first write of events (Append, or
// AppendFinish: the Runner's end with them) is preceded by end: the job is
// ended by another party (a cancel of a job its canceller saw queued)
// just before its Runner's first write reaches the store.
type endingStore struct {
	*memory.Store
	once sync.Once
	end  func()
}

func (s *endingStore) Append(ctx context.Context, jid string, events ...exe.Event) error {
	s.once.Do(s.end)
	return s.Store.Append(ctx, jid, events...)
}

func (s *endingStore) AppendFinish(ctx context.Context, jid string, state exe.JobState, msg string, events ...exe.Event) error {
	s.once.Do(s.end)
	return s.Store.AppendFinish(ctx, jid, state, msg, events...)
}

// A job is ended unrun (Runner.Skip, as a cancel of a job seen queued
// does) just before its Runner's events reach the store, which refuses
// them: the metrics count the SKIPPED events the end stored, not the
// results the Runner was given but could not store.
func TestRunnerCountsOnlyWhatTheStoreTook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs := newCountingObserver()
	store := &endingStore{Store: memory.New(memory.Options{})}
	hosts := []string{"a", "b", "c"}
	job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: hosts, Execute: exe.ExecuteArgs{Cmd: "echo"}}}
	require.NoError(t, store.Create(ctx, job))
	canceller := &exe.Runner{Store: store.Store, Observer: obs}
	store.end = func() { require.NoError(t, canceller.Skip(ctx, job.JID, exe.ErrCancelled)) }

	r := &exe.Runner{Store: store, Executor: &plugintest.Executor{}, Observer: obs}
	require.NoError(t, r.RunJob(ctx, job))

	assertKeptOrFilled(t, store, job.JID, hosts, nil, "cancelled before start")
	wantHosts, wantEnded := storedCounts(t, store)
	gotHosts, gotEnded := obs.counts()
	assert.Equal(t, map[exe.HostStatus]int{exe.HostSkipped: 3}, wantHosts)
	assert.Equal(t, wantHosts, gotHosts, "host results counted: those stored")
	assert.Equal(t, wantEnded, gotEnded, "job ends counted: those stored")
}
