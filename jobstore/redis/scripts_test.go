package redis

import (
	"context"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queuedStore is a store on a fresh Redis with the workers' group made.
func queuedStore(t *testing.T) *Store {
	s := testStore(t, Options{})
	require.NoError(t, s.rdb.XGroupCreateMkStream(context.Background(), s.key("queue"), group, "0").Err())
	return s
}

// queue stores and queues a job.
func queue(t *testing.T, s *Store) string {
	t.Helper()
	return runningJob(t, s, s.key("queue"))
}

// take runs takeScript as worker with token and returns the jids taken.
func take(t *testing.T, s *Store, worker, token string, count int) []string {
	t.Helper()
	res, err := takeScript.Run(context.Background(), s.rdb, []string{s.key("queue"), s.key("started"), s.key("taken", worker)},
		group, worker, count, 10000, s.opts.Prefix, token, "worker lost").Slice()
	require.NoError(t, err)
	var jids []string
	for i := 0; i < len(res); i += 2 {
		jids = append(jids, res[i].(string))
		require.NotEmpty(t, res[i+1], "the job's hash comes with it")
	}
	return jids
}

func TestTakeRetriedGetsTheSameJobs(t *testing.T) {
	s := queuedStore(t)
	jids := []string{queue(t, s), queue(t, s), queue(t, s)}

	first := take(t, s, "w1", "t1", 2)
	assert.Equal(t, jids[:2], first)
	assert.Equal(t, first, take(t, s, "w1", "t1", 2), "the same call again gets the same jobs")
	assert.Equal(t, jids[2:], take(t, s, "w1", "t2", 2), "a new call gets the next ones")
	assert.Empty(t, take(t, s, "w2", "t2", 2), "another worker's token is its own")
	assert.Empty(t, take(t, s, "w1", "t1", 2), "only the last call is recognised")
}

func TestStartRetriedGetsTheJob(t *testing.T) {
	s := queuedStore(t)
	ctx := context.Background()
	jid := queue(t, s)
	msgs, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "w1",
		Streams: []string{s.key("queue"), ">"}, Count: 1}).Result()
	require.NoError(t, err)
	id := msgs[0].Messages[0].ID
	start := func(worker string) any {
		res, err := startScript.Run(ctx, s.rdb, []string{s.jobKey(jid), s.leaseKey(jid), s.key("started"), s.key("queue")},
			worker, 10000, jid, group, id, "worker lost").Result()
		require.NoError(t, err)
		return res
	}
	assert.IsType(t, []any{}, start("w1"), "started: the job's hash")
	assert.IsType(t, []any{}, start("w1"), "the same worker again: a retry, the job once more")
	assert.Equal(t, "started", start("w2"), "another worker never starts it")
}

// TestLostLeaseFailureRetriedGetsTheSameAnswer: the script that fails a
// job as lost, sent again with the same token (go-redis resends a call
// whose reply was lost), answers the targets the first run gave a FAILED
// event rather than "finished", so that the recovery counts them, and
// the job's end, once. Another token is another call: refused.
func TestLostLeaseFailureRetriedGetsTheSameAnswer(t *testing.T) {
	s := testStore(t, Options{})
	ctx := context.Background()
	j := &exe.Job{JID: uuid.NewString(), State: exe.JobRunning, StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b", "c"}, Execute: exe.ExecuteArgs{Cmd: "true"}}}
	require.NoError(t, s.create(ctx, j, ""))
	require.NoError(t, s.Append(ctx, j.JID, exe.Event{Host: "b", Status: exe.HostChanged}))
	now, err := s.rdb.Time(ctx).Result()
	require.NoError(t, err)
	fail := func(token string) any {
		// No lease: it has lapsed, as the recovery saw it just now.
		res, err := finishScript.Run(ctx, s.rdb, s.finishKeys(j.JID), int(exe.JobFailure), "worker lost", now.Unix(),
			60000, s.key("lock")+":", j.JID, "guard", now.UnixMilli(), 60000, int(exe.HostFailed), token, lostHostSuffix).Result()
		require.NoError(t, err)
		return res
	}
	assert.Equal(t, []any{"ok", "a", "c"}, fail("t1"), "the targets it gave an event")
	assert.Equal(t, []any{"ok", "a", "c"}, fail("t1"), "the same call again: the same answer")
	assert.Equal(t, "finished", fail("t2"), "another call")
	got, err := s.Get(ctx, j.JID, true)
	require.NoError(t, err)
	for _, h := range j.Targets {
		assert.Len(t, got.ReturnData[h], 1, "%s: one event", h)
	}
	assert.Equal(t, "worker lost"+lostHostSuffix, got.ReturnData["a"][0].Msg)
}
