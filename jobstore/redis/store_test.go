package redis_test

import (
	"context"
	"fmt"
	stdlog "log"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/redistest"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/0ops/exed/jobstore/storetest"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	storetest.Run(t, func(t *testing.T, opts storetest.Options) exe.JobStore {
		// Each test gets its own key space in the shared server.
		return exeredis.New(rdb, exeredis.Options{Prefix: "t" + uuid.NewString()[:8] + ":", Retention: opts.Retention,
			PollInterval: 100 * time.Millisecond})
	})
}

// newStore is a store with its own prefix on srv.
func newStore(t *testing.T, srv *redistest.Server) (*exeredis.Store, *goredis.Client, string) {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	prefix := "t" + uuid.NewString()[:8] + ":"
	s := exeredis.New(rdb, exeredis.Options{Prefix: prefix, Retention: time.Hour})
	t.Cleanup(func() { s.Close() })
	return s, rdb, prefix
}

func TestKeysUnderPrefixAndExpiring(t *testing.T) {
	srv := redistest.Start(t)
	s, rdb, prefix := newStore(t, srv)
	ctx := context.Background()
	j := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: "r"}}}
	require.NoError(t, s.Create(ctx, j))
	require.NoError(t, s.Append(ctx, j.JID, exe.Event{Host: "a", Status: exe.HostChanged}))
	keys, err := rdb.Keys(ctx, "*").Result() // test only: the store never scans
	require.NoError(t, err)
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			continue
		}
		assert.Fail(t, "key outside the prefix", k)
	}
	require.NoError(t, s.Finish(ctx, j.JID, exe.JobDone, ""))
	for _, k := range []string{prefix + "job:" + j.JID, prefix + "events:" + j.JID} {
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 5, "%s expires after the retention", k)
	}
	n, err := rdb.Exists(ctx, prefix+"lock:a").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the lock is released")
}

func TestRedisDownIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s, _, _ := newStore(t, srv)
	ctx := context.Background()
	require.NoError(t, s.Health(ctx))
	srv.Stop()
	_, err := s.List(ctx)
	assert.ErrorIs(t, err, exe.ErrUnavailable)
	assert.Equal(t, "job store: redis is not reachable", exe.PublicMessage(err), "its public text names no address")
	assert.Contains(t, err.Error(), srv.Addr, "the log gets the cause")
	assert.ErrorIs(t, s.Health(ctx), exe.ErrUnavailable)
	srv.Restart(t)
	require.Eventually(t, func() bool { return s.Health(ctx) == nil }, 10*time.Second, 10*time.Millisecond, "recovers by itself")
	ids, err := s.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "a Redis without persistence comes back empty")
}

// runningJob stores a running execute job.
func runningJob(t *testing.T, s *exeredis.Store) string {
	t.Helper()
	j := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "true"}}}
	require.NoError(t, s.Create(context.Background(), j))
	return j.JID
}

// TestFollowsShareReads: 300 follows of 30 jobs wait on shared reads, not
// on a blocking read each, and each still gets its job's events in order.
func TestFollowsShareReads(t *testing.T) {
	srv := redistest.Start(t)
	s, rdb, _ := newStore(t, srv)
	ctx := context.Background()
	const jobs, perJob = 30, 10
	jids := make([]string, jobs)
	for i := range jids {
		jids[i] = runningJob(t, s)
		require.NoError(t, s.Append(ctx, jids[i], exe.Event{Host: "a", Status: exe.HostOK, Msg: "1"}))
	}
	type result struct {
		jid  string
		msgs []string
		err  error
	}
	results := make(chan result, jobs*perJob)
	var first, second sync.WaitGroup
	first.Add(jobs * perJob)
	second.Add(jobs * perJob)
	for _, jid := range jids {
		for k := 0; k < perJob; k++ {
			go func() {
				var msgs []string
				job, err := s.Follow(ctx, jid, 0, func(ev exe.Event) error {
					msgs = append(msgs, ev.Msg)
					switch len(msgs) {
					case 1:
						first.Done()
					case 2:
						second.Done()
					}
					return nil
				})
				if err == nil && job.State != exe.JobDone {
					err = fmt.Errorf("job ended %v", job.State)
				}
				results <- result{jid, msgs, err}
			}()
		}
	}
	first.Wait() // every follow has read the stored event
	require.NoError(t, rdb.ConfigResetStat(ctx).Err())
	for _, jid := range jids {
		require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "a", Status: exe.HostOK, Msg: "2"}))
	}
	second.Wait() // ... and the live one
	stats, err := rdb.Info(ctx, "commandstats").Result()
	require.NoError(t, err)
	assert.Less(t, commandCalls(stats, "xread"), jobs*perJob/3,
		"one event for 300 follows costs a few shared reads, not a read per follow")

	for _, jid := range jids {
		require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "a", Status: exe.HostOK, Msg: "3"}))
		require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
	}
	for i := 0; i < jobs*perJob; i++ {
		r := <-results
		require.NoError(t, r.err, r.jid)
		assert.Equal(t, []string{"1", "2", "3"}, r.msgs, r.jid)
	}
}

// commandCalls reads a command's call count from INFO commandstats.
func commandCalls(stats, cmd string) int {
	for _, line := range strings.Split(stats, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if ok {
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			return n
		}
	}
	return 0
}

// followLive follows a running job in the background until it has had
// one live event; done gets the follow's error.
func followLive(t *testing.T, s *exeredis.Store, jid string) (done <-chan error) {
	t.Helper()
	got := make(chan struct{})
	ended := make(chan error, 1)
	go func() {
		_, err := s.Follow(context.Background(), jid, 0, func(exe.Event) error { close(got); return nil })
		ended <- err
	}()
	require.NoError(t, s.Append(context.Background(), jid, exe.Event{Host: "a", Status: exe.HostOK}))
	<-got
	return ended
}

func TestFollowOfAVanishedJob(t *testing.T) {
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := exeredis.New(rdb, exeredis.Options{Prefix: "v:", PollInterval: 50 * time.Millisecond})
	ctx := context.Background()
	jid := runningJob(t, s)
	done := followLive(t, s, jid)
	// Redis loses the job (a restart without persistence, say).
	require.NoError(t, rdb.Del(ctx, "v:job:"+jid, "v:events:"+jid).Err())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, exe.ErrNotFound)
	case <-time.After(10 * time.Second):
		t.Fatal("the follow did not notice")
	}
}

// TestFollowWhenRedisStops: a follow waits for Redis for FollowOutage,
// then ends with ErrUnavailable.
func TestFollowWhenRedisStops(t *testing.T) {
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	s := exeredis.New(rdb, exeredis.Options{Prefix: "w:", FollowOutage: 500 * time.Millisecond})
	jid := runningJob(t, s)
	done := followLive(t, s, jid)
	srv.Stop()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, exe.ErrUnavailable)
		assert.Equal(t, "job store: redis is not reachable", exe.PublicMessage(err))
	case <-time.After(20 * time.Second):
		t.Fatal("the follow hangs on a stopped Redis")
	}
}

// TestFollowResumesAfterAnOutage: Redis stops answering (paused, then
// restarted with its AOF) while a follow waits; the follow waits too and
// then hands on every event once, in order, to the end.
func TestFollowResumesAfterAnOutage(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{AppendOnly: true})
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	s := exeredis.New(rdb, exeredis.Options{Prefix: "f:", PollInterval: 100 * time.Millisecond})
	ctx := context.Background()
	jid := runningJob(t, s)
	seen := make(chan string, 100)
	ended := make(chan error, 1)
	var final *exe.Job
	go func() {
		var err error
		final, err = s.Follow(ctx, jid, 0, func(ev exe.Event) error { seen <- ev.Msg; return nil })
		ended <- err
	}()
	next := 0
	appendAndSee := func() {
		next++
		msg := strconv.Itoa(next)
		require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "a", Seq: int64(next), Status: exe.HostOK, Msg: msg}))
		select {
		case got := <-seen:
			require.Equal(t, msg, got, "in order, none skipped, none twice")
		case err := <-ended:
			t.Fatalf("the follow ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("the follow did not hand on event " + msg)
		}
	}
	appendAndSee()
	srv.Pause(t)
	time.Sleep(2500 * time.Millisecond) // the outage: longer than the client's timeouts
	srv.Resume(t)
	appendAndSee()
	srv.Stop()
	time.Sleep(2 * time.Second) // the outage
	srv.Restart(t)
	appendAndSee()
	appendAndSee()
	require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
	select {
	case err := <-ended:
		require.NoError(t, err)
		assert.Equal(t, exe.JobDone, final.State)
	case <-time.After(20 * time.Second):
		t.Fatal("the follow did not end with its job")
	}
	assert.Empty(t, seen, "no event handed on twice")
}

// TestExpiredJobsLeaveTheListWithoutList: finishing jobs prunes expired
// ones from the job list, so it does not grow when nobody lists jobs.
func TestExpiredJobsLeaveTheListWithoutList(t *testing.T) {
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := exeredis.New(rdb, exeredis.Options{Prefix: "p:", Retention: 20 * time.Millisecond})
	ctx := context.Background()
	old := []string{runningJob(t, s), runningJob(t, s)}
	for _, jid := range old {
		require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
	}
	require.Eventually(t, func() bool {
		n, err := rdb.Exists(ctx, "p:job:"+old[0], "p:job:"+old[1]).Result()
		return err == nil && n == 0
	}, 10*time.Second, 5*time.Millisecond, "the old jobs expire")
	require.NoError(t, s.Finish(ctx, runningJob(t, s), exe.JobDone, ""))
	for _, jid := range old {
		for _, key := range []string{"p:jobs", "p:expiry"} {
			err := rdb.ZScore(ctx, key, jid).Err()
			assert.ErrorIs(t, err, goredis.Nil, "%s still in %s", jid, key)
		}
	}
}

// retryingStore is a store with prefix on a new Redis, reached through a
// proxy that can lose replies, by a client that sends a command once
// more when its reply is lost. The client has one connection, so the
// reply the proxy drops is that of the next command sent.
func retryingStore(t *testing.T, prefix string) (*exeredis.Store, *redistest.LossyProxy) {
	t.Helper()
	srv := redistest.Start(t)
	proxy := redistest.NewLossyProxy(t, srv.Addr)
	rdb := goredis.NewClient(&goredis.Options{Addr: proxy.Addr, PoolSize: 1, MaxRetries: 1,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	return exeredis.New(rdb, exeredis.Options{Prefix: prefix}), proxy
}

// TestRetriedWritesTakeEffectOnce: when a reply is lost after Redis ran a
// command, go-redis sends it again; creating a job, appending events,
// ending the job and deleting it must then neither fail nor happen twice.
func TestRetriedWritesTakeEffectOnce(t *testing.T) {
	s, proxy := retryingStore(t, "r:")
	ctx := context.Background()
	// The scripts are loaded, so each call below is one EVALSHA.
	require.NoError(t, s.Append(ctx, runningJob(t, s), exe.Event{Host: "a"}))

	job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: "r"}}}
	proxy.DropNextReply()
	require.NoError(t, s.Create(ctx, job), "the retry finds the job its first attempt stored")
	require.Equal(t, 1, proxy.Dropped(), "the create's reply was lost")

	proxy.DropNextReply()
	require.NoError(t, s.Append(ctx, job.JID, exe.Event{Host: "a", Msg: "once"}))
	require.Equal(t, 2, proxy.Dropped(), "the append's reply was lost")
	got, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	require.Len(t, got.ReturnData["a"], 1, "the event is stored once")
	assert.Equal(t, "once", got.ReturnData["a"][0].Msg)

	// A different job under the same jid is still refused.
	other := *job
	other.Request.Deploy.Role = "other"
	assert.ErrorContains(t, s.Create(ctx, &other), "already exists")

	// Ending the job (Runner.Fail's plain Finish) and deleting it.
	require.NoError(t, s.Finish(ctx, runningJob(t, s), exe.JobDone, ""), "loads the script")
	proxy.DropNextReply()
	require.NoError(t, s.Finish(ctx, job.JID, exe.JobFailure, "it broke"), "the retry finds the job ended by its first attempt")
	require.Equal(t, 3, proxy.Dropped(), "the finish's reply was lost")
	got, err = s.Get(ctx, job.JID, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, got.State)
	assert.Equal(t, "it broke", got.Error)
	assert.ErrorIs(t, s.Finish(ctx, job.JID, exe.JobFailure, "it broke"), exe.ErrFinished, "another call is not the retried one")

	require.NoError(t, s.Delete(ctx, runningEnded(t, s)), "loads the script")
	proxy.DropNextReply()
	require.NoError(t, s.Delete(ctx, job.JID), "the retry finds the job deleted by its first attempt")
	require.Equal(t, 4, proxy.Dropped(), "the delete's reply was lost")
	_, err = s.Get(ctx, job.JID, false)
	assert.ErrorIs(t, err, exe.ErrNotFound)
	assert.ErrorIs(t, s.Delete(ctx, job.JID), exe.ErrNotFound, "another call is not the retried one")
}

// runningEnded is a job created and ended: one that may be deleted.
func runningEnded(t *testing.T, s *exeredis.Store) string {
	t.Helper()
	jid := runningJob(t, s)
	require.NoError(t, s.Finish(context.Background(), jid, exe.JobDone, ""))
	return jid
}

// TestFinishUnrunRetriedAfterALostReply: the reply to the script that
// ends a job unrun is lost and go-redis sends it again, which finds the
// job ended by this very call: it answers as the first run would have,
// with the targets that run filled, so that its caller counts them once,
// and not none; each target holds one event.
func TestFinishUnrunRetriedAfterALostReply(t *testing.T) {
	s, proxy := retryingStore(t, "u:")
	ctx := context.Background()
	// The scripts are loaded, so the call below is one EVALSHA.
	_, err := s.FinishUnrun(ctx, runningJob(t, s), "cancelled", exe.Event{Status: exe.HostSkipped})
	require.NoError(t, err)

	job := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b", "c"}, Execute: exe.ExecuteArgs{Cmd: "true"}}}
	require.NoError(t, s.Create(ctx, job))
	require.NoError(t, s.Append(ctx, job.JID, exe.Event{Host: "b", Status: exe.HostChanged, Name: "ran"}))
	fill := exe.Event{Status: exe.HostSkipped, Msg: "cancelled before start"}
	proxy.DropNextReply()
	filled, err := s.FinishUnrun(ctx, job.JID, "cancelled", fill)
	require.NoError(t, err, "the retry finds the job ended by its first run")
	require.Equal(t, 1, proxy.Dropped(), "the reply of the end was lost")
	assert.Equal(t, []string{"a", "c"}, filled, "the retry answers the targets the first run filled")

	got, err := s.Get(ctx, job.JID, true)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, got.State)
	for _, h := range job.Targets {
		assert.Len(t, got.ReturnData[h], 1, "%s: one event", h)
	}
	_, err = s.FinishUnrun(ctx, job.JID, "cancelled", fill)
	assert.ErrorIs(t, err, exe.ErrFinished, "another call is not the retried one")
}

// goredisLog records what go-redis logs.
type goredisLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *goredisLog) Printf(_ context.Context, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

// stderrLog writes go-redis's log to stderr, as its default does.
type stderrLog struct{ l *stdlog.Logger }

func (s stderrLog) Printf(_ context.Context, format string, v ...any) { s.l.Printf(format, v...) }

func (l *goredisLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// A store on a client with go-redis's default options (RESP3, whose
// maintenance notifications register handlers) is made and used without
// go-redis logging a word: the store's own client for follows has a
// push-notification processor of its own.
func TestNewOnADefaultClientLogsNothing(t *testing.T) {
	srv := redistest.Start(t)
	logged := &goredisLog{}
	goredis.SetLogger(logged)
	defer goredis.SetLogger(stderrLog{stdlog.New(os.Stderr, "redis: ", stdlog.LstdFlags)})
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := exeredis.New(rdb, exeredis.Options{Prefix: "t" + uuid.NewString()[:8] + ":"})
	_, err := s.List(context.Background())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Empty(t, logged.all())
}
