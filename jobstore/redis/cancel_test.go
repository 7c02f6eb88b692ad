package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cancelReplyHeld holds the reply of the cancel script until after is
// done: what happens between the publish and the caller's next step.
type cancelReplyHeld struct {
	channel string
	after   func()
}

func (h *cancelReplyHeld) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *cancelReplyHeld) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && slices.Contains(cmd.Args(), any(h.channel)) && (cmd.Name() == "evalsha" || cmd.Name() == "eval") {
			h.after()
		}
		return err
	}
}
func (h *cancelReplyHeld) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestCancelOfItsOwnJobThatEndsAtTheMessage: the lease of a job this
// process's worker runs has lapsed; the cancel's message reaches the
// worker, which stops the job and forgets it, before the script's reply
// reaches the caller. The cancel still succeeded here: nil, not "the
// worker that started it is gone".
func TestCancelOfItsOwnJobThatEndsAtTheMessage(t *testing.T) {
	s := testStore(t, Options{})
	disp := NewDispatcher(s, DispatcherOptions{RunJobs: true, Lease: 10 * time.Second})
	eng, err := exe.NewEngine(exe.Config{Store: s, Executor: &plugintest.Executor{}, Dispatcher: disp})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ctx := context.Background()
	jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "block"}})
	require.NoError(t, err)
	w := disp.w
	require.NotNil(t, w)
	require.Eventually(t, func() bool {
		j, err := s.Get(ctx, jid, true)
		return err == nil && len(j.ReturnData["a"]) == 1
	}, 20*time.Second, 10*time.Millisecond, "the command starts")
	require.True(t, w.jobs.Has(jid))
	require.NoError(t, s.rdb.Del(ctx, s.leaseKey(jid)).Err())

	forgotten := false
	s.rdb.AddHook(&cancelReplyHeld{channel: s.key("cancel"), after: func() {
		// Bounded: the message reaches the worker at once.
		for deadline := time.Now().Add(20 * time.Second); w.jobs.Has(jid) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		forgotten = !w.jobs.Has(jid)
	}})
	require.NoError(t, disp.Cancel(ctx, jid))
	require.True(t, forgotten, "the worker stopped the job before the cancel returned")
	job, err := eng.Follow(ctx, jid, func(exe.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, exe.ErrCancelled.Error(), job.Error)
}
