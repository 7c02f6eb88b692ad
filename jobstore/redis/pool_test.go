package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/internal/redistest"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFollowsOnADefaultClient: a store on a client with go-redis's
// default options (a pool of 10 connections per CPU) serves more shared
// follow reads than that pool holds: they are all under way at once, the
// client's own calls never time out waiting for a connection, and every
// follow ends with its job.
func TestFollowsOnADefaultClient(t *testing.T) {
	// A hub per followed job, so that a few jobs make more reads than
	// the pool has connections (with 256 streams a read, it takes 256
	// times as many jobs).
	streams := hubStreams
	hubStreams = 1
	t.Cleanup(func() { hubStreams = streams })
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, Options{})
	t.Cleanup(func() { s.Close() })
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { admin.Close() })

	ctx := context.Background()
	reads := 3 * rdb.Options().PoolSize
	jobs := make([]string, reads)
	for i := range jobs {
		jobs[i] = runningJob(t, s)
	}
	ended := make(chan error, len(jobs))
	for _, jid := range jobs {
		go func() {
			job, err := s.Follow(ctx, jid, 0, func(exe.Event) error { return nil })
			if err == nil && job.State != exe.JobDone {
				err = fmt.Errorf("job %s ended %s", jid, job.State)
			}
			ended <- err
		}()
	}
	require.Eventually(t, func() bool { return redistest.BlockedClients(t, admin) >= reads }, 20*time.Second, 10*time.Millisecond,
		"every follow's read is under way at once")
	for _, jid := range jobs {
		require.NoError(t, s.Append(ctx, jid, exe.Event{Host: "a", Status: exe.HostOK}))
		require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
	}
	for range jobs {
		select {
		case err := <-ended:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("a follow did not end with its job")
		}
	}
	assert.Zero(t, rdb.PoolStats().Timeouts, "no call of the client's waited out its pool timeout")
}

// A worker waits for queued jobs in a blocking read on a connection of
// the store's own, as follows do, not of the caller's client: with a
// pool of one connection, the client's calls (a submit, a job's state)
// still get it while the worker waits.
func TestWorkerWaitsOnTheStoresOwnConnections(t *testing.T) {
	srv := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr, PoolSize: 1, PoolTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, Options{})
	t.Cleanup(func() { s.Close() })
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { admin.Close() })
	eng, err := exe.NewEngine(exe.Config{Executor: &plugintest.Executor{}, Dispatcher: NewDispatcher(s, DispatcherOptions{RunJobs: true})})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })

	ctx := context.Background()
	for i := 0; i < 5; i++ {
		require.Eventually(t, func() bool { return redistest.BlockedClients(t, admin) >= 1 }, 20*time.Second, 10*time.Millisecond,
			"the worker waits for a job")
		jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "stream 1"}})
		require.NoError(t, err, "submit %d while the worker waits", i)
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		job, err := eng.Follow(fctx, jid, func(exe.Event) error { return nil })
		cancel()
		require.NoError(t, err)
		assert.Equal(t, exe.JobDone, job.State, job.Error)
	}
	assert.Zero(t, rdb.PoolStats().Timeouts, "no call of the client's waited out its pool timeout")
}
