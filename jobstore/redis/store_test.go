package redis_test

import (
	"context"
	"testing"
	"time"

	"strings"

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
	return exeredis.New(rdb, exeredis.Options{Prefix: prefix, Retention: time.Hour}), rdb, prefix
}

func TestKeysUnderPrefixAndExpiring(t *testing.T) {
	srv := redistest.Start(t)
	s, rdb, prefix := newStore(t, srv)
	ctx := context.Background()
	j := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpDeploy, Targets: []string{"a"}, Deploy: exe.DeployArgs{Role: "r"}}}
	require.NoError(t, s.Create(ctx, j))
	require.NoError(t, s.Append(ctx, j.JID, exe.Event{Host: "a", Status: exe.Changed}))
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
	assert.Contains(t, err.Error(), "job store: redis:")
	assert.ErrorIs(t, s.Health(ctx), exe.ErrUnavailable)
	srv.Restart(t)
	require.Eventually(t, func() bool { return s.Health(ctx) == nil }, 10*time.Second, 10*time.Millisecond, "recovers by itself")
	ids, err := s.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "a Redis without persistence comes back empty")
}
