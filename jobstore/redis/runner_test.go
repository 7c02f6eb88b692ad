package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/redistest"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eachCmd is a go-redis hook that calls itself with every command a
// client sends, alone or in pipelines, before it is sent.
type eachCmd func(goredis.Cmder)

func (f eachCmd) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (f eachCmd) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		f(cmd)
		return next(ctx, cmd)
	}
}
func (f eachCmd) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			f(cmd)
		}
		return next(ctx, cmds)
	}
}

// isScript reports whether cmd runs a script: EVALSHA or EVAL.
func isScript(cmd goredis.Cmder) bool {
	name := cmd.Name()
	return name == "evalsha" || name == "eval"
}

// scriptCount counts the scripts a client runs (its note, as an eachCmd
// hook).
type scriptCount struct{ n atomic.Int64 }

func (c *scriptCount) note(cmd goredis.Cmder) {
	if isScript(cmd) {
		c.n.Add(1)
	}
}

func executeJob(t *testing.T, s *exeredis.Store, cmd string, targets ...string) *exe.Job {
	t.Helper()
	job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: targets, Execute: exe.ExecuteArgs{Cmd: cmd}}}
	require.NoError(t, s.Create(context.Background(), job))
	return job
}

// TestRunnerEndsAQuickJobInOneWrite: a job whose operation returns
// before its events were written is ended with them by one script: its
// events and its outcome, stored once each.
func TestRunnerEndsAQuickJobInOneWrite(t *testing.T) {
	srv := redistest.Start(t)
	s, rdb, _ := newStore(t, srv)
	ctx := context.Background()
	r := &exe.Runner{Store: s, Executor: &plugintest.Executor{}}
	// A first job loads the script: then each job is one call.
	require.NoError(t, r.RunJob(ctx, executeJob(t, s, "hello", "a")))
	scripts := &scriptCount{}
	rdb.AddHook(eachCmd(scripts.note))
	// The Runner starts its event writer once an event has waited
	// appendDelay (10ms): a run held up that long between its first
	// event and its end (a loaded machine) writes its events first, as
	// it should. Such a run is not the quick job this test is about:
	// another is tried, a few at most.
	var job *exe.Job
	for try := 0; try < 5; try++ {
		job = executeJob(t, s, "hello", "a", "b", "c")
		scripts.n.Store(0)
		require.NoError(t, r.RunJob(ctx, job))
		if scripts.n.Load() == 1 {
			break
		}
		t.Logf("run %d took %d scripts (held up past appendDelay): trying again", try, scripts.n.Load())
	}
	assert.EqualValues(t, 1, scripts.n.Load(), "the events and the outcome in one script")
	j, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, j.State, j.Error)
	for i, h := range job.Targets {
		require.Len(t, j.ReturnData[h], 1, h)
		assert.Equal(t, int64(i+1), j.ReturnData[h][0].Seq)
	}
}

// waitingExecutor emits an event for its first host, and emits the one
// of its second host only once the store holds the first: events are
// stored while the operation runs, not only at its end.
type waitingExecutor struct {
	plugintest.Executor
	s   *exeredis.Store
	jid string
}

func (x *waitingExecutor) Execute(ctx context.Context, hs []string, args exe.ExecuteArgs, emit exe.Emit) error {
	emit(exe.Event{Host: hs[0], Status: exe.HostChanged})
	if err := waitHeld(ctx, x.s, x.jid, hs[0]); err != nil {
		return err
	}
	emit(exe.Event{Host: hs[1], Status: exe.HostChanged})
	return nil
}

// waitHeld waits, for up to 10s, until the store holds an event of host
// for job jid, stored while the job runs.
func waitHeld(ctx context.Context, s *exeredis.Store, jid, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		j, err := s.Get(ctx, jid, true)
		if err != nil {
			return err
		}
		if len(j.ReturnData[host]) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the event of %s was not stored while the job ran", host)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestRunnerStoresEventsWhileTheJobRuns(t *testing.T) {
	srv := redistest.Start(t)
	s, _, _ := newStore(t, srv)
	job := executeJob(t, s, "wait", "a", "b")
	r := &exe.Runner{Store: s, Executor: &waitingExecutor{s: s, jid: job.JID}}
	require.NoError(t, r.RunJob(context.Background(), job))
	j, err := s.Get(context.Background(), job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, j.State, j.Error)
	assert.Len(t, j.ReturnData["a"], 1)
	assert.Len(t, j.ReturnData["b"], 1)
}

// lossyStore is a store on a new Redis reached through a proxy that can
// lose replies, by a client that never sends a command again by itself:
// what a lost reply leaves is the Runner's to handle.
func lossyStore(t *testing.T) (*exeredis.Store, *redistest.LossyProxy) {
	t.Helper()
	srv := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	rdb := goredis.NewClient(&goredis.Options{Addr: proxy.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return exeredis.New(rdb, exeredis.Options{Prefix: "l" + uuid.NewString()[:8] + ":"}), proxy
}

// TestRunnerEndRetriedAfterALostReply: the reply to the script that
// stores a job's last events and ends it is lost; the Runner sends it
// again, which finds the job ended by this call: the job ends once, with
// each event once, and the Runner logs it ended.
func TestRunnerEndRetriedAfterALostReply(t *testing.T) {
	s, proxy := lossyStore(t)
	ctx := context.Background()
	// The script is loaded, so the reply lost is that of the call that
	// stores the events.
	require.NoError(t, s.AppendFinish(ctx, runningJob(t, s), exe.JobDone, "", exe.Event{Seq: 1, Host: "a"}))
	job := executeJob(t, s, "hello", "a", "b", "c")
	var logged bytes.Buffer
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &logged}})
	proxy.DropNextReply()
	r := &exe.Runner{Store: s, Executor: &plugintest.Executor{}, Logger: log}
	require.NoError(t, r.RunJob(ctx, job))
	require.Equal(t, 1, proxy.Dropped())
	j, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, j.State, j.Error)
	for _, h := range job.Targets {
		assert.Len(t, j.ReturnData[h], 1, "%s: its event stored once", h)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, logged.String(), "job ended")
	assert.NotContains(t, logged.String(), "already ended", "the retry is the Runner's own end")
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// storedThenLossy is an executor whose events (with stdout) are stored
// while it runs: it returns only once the store holds them, then, with a
// proxy, makes it lose the next reply, the one to the job's end.
type storedThenLossy struct {
	plugintest.Executor
	s      *exeredis.Store
	proxy  *redistest.LossyProxy
	jid    string
	stdout string
}

func (x *storedThenLossy) Execute(ctx context.Context, hs []string, args exe.ExecuteArgs, emit exe.Emit) error {
	for _, h := range hs {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: x.stdout}})
	}
	if err := waitHeld(ctx, x.s, x.jid, hs[len(hs)-1]); err != nil {
		return err
	}
	if x.proxy != nil {
		x.proxy.DropNextReply()
	}
	return nil
}

// endObserver counts the job ends and host results it is told of.
type endObserver struct {
	exe.NoObserver
	ended, results atomic.Int64
}

func (o *endObserver) JobEnded(exe.Operate, exe.JobState)     { o.ended.Add(1) }
func (o *endObserver) HostResult(exe.Operate, exe.HostStatus) { o.results.Add(1) }

// TestRunnerEndRetriedAfterALostReplyOnceItsEventsWereStored: as
// TestRunnerEndRetriedAfterALostReply, for a job whose events were all
// stored while it ran, so that its end carries none of its own: the retry
// still finds the job ended by this Runner, which counts the end once,
// each host's result once, and logs "job ended", not "already ended".
func TestRunnerEndRetriedAfterALostReplyOnceItsEventsWereStored(t *testing.T) {
	s, proxy := lossyStore(t)
	ctx := context.Background()
	// The scripts are loaded, so the reply lost is that of the end.
	require.NoError(t, s.AppendFinish(ctx, runningJob(t, s), exe.JobDone, "", exe.Event{Seq: 1, Host: "a"}))
	jid := runningJob(t, s)
	require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
	job := executeJob(t, s, "hello", "a", "b")
	var logged bytes.Buffer
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &logged}})
	obs := &endObserver{}
	r := &exe.Runner{Store: s, Executor: &storedThenLossy{s: s, proxy: proxy, jid: job.JID}, Logger: log, Observer: obs}
	require.NoError(t, r.RunJob(ctx, job))
	require.Equal(t, 1, proxy.Dropped(), "the end's reply was lost")
	j, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, j.State, j.Error)
	for _, h := range job.Targets {
		assert.Len(t, j.ReturnData[h], 1, "%s: its event stored once", h)
	}
	assert.EqualValues(t, 1, obs.ended.Load(), "the end counted once")
	assert.EqualValues(t, 2, obs.results.Load(), "each host's result counted once")
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, logged.String(), "job ended")
	assert.NotContains(t, logged.String(), "already ended", "the retry is the Runner's own end")
}

// scriptBytes records the size of the arguments of each script a client
// runs (its note, as an eachCmd hook).
type scriptBytes struct {
	mu    sync.Mutex
	sizes []int
}

func (c *scriptBytes) note(cmd goredis.Cmder) {
	if !isScript(cmd) {
		return
	}
	n := 0
	for _, a := range cmd.Args() {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		default:
			n += 8
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sizes = append(c.sizes, n)
}

// TestRunnerEndAfterStoredEventsSendsNoEvent: the end of a job whose
// events were stored while it ran names the last one's Seq, and sends
// none of them again: its script's arguments are a few hundred bytes,
// whatever the output the events hold (here 256 KiB each).
func TestRunnerEndAfterStoredEventsSendsNoEvent(t *testing.T) {
	srv := redistest.Start(t)
	s, rdb, _ := newStore(t, srv)
	ctx := context.Background()
	job := executeJob(t, s, "hello", "a", "b")
	out := strings.Repeat("x", 256<<10)
	sizes := &scriptBytes{}
	rdb.AddHook(eachCmd(sizes.note))
	r := &exe.Runner{Store: s, Executor: &storedThenLossy{s: s, jid: job.JID, stdout: out}}
	require.NoError(t, r.RunJob(ctx, job))
	j, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobDone, j.State, j.Error)
	for _, h := range job.Targets {
		require.Len(t, j.ReturnData[h], 1, h)
		assert.Len(t, j.ReturnData[h][0].Exec.Stdout, len(out), h)
	}
	sizes.mu.Lock()
	defer sizes.mu.Unlock()
	require.NotEmpty(t, sizes.sizes)
	assert.Less(t, sizes.sizes[len(sizes.sizes)-1], 1024, "the end's script arguments, in bytes (all: %v)", sizes.sizes)
}
