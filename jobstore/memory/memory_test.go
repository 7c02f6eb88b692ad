package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/jobstore/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts storetest.Options) exe.JobStore {
		return memory.New(memory.Options{Retention: opts.Retention})
	})
}

// fakeClock is a manual clock: the memory store's retention is checked
// without waiting.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestMaxJobsDropsOldestFinished(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := memory.New(memory.Options{MaxJobs: 3, Retention: time.Hour, Now: clock.Now})
	mk := func(id string) *exe.Job {
		return &exe.Job{JID: id, Request: exe.Request{Operate: exe.OpPing, Targets: []string{"a"}}}
	}
	for _, id := range []string{"j1", "j2", "j3"} {
		require.NoError(t, s.Create(ctx, mk(id)))
	}
	err := s.Create(ctx, mk("j4"))
	assert.ErrorIs(t, err, exe.ErrBusy, "every job is running: nothing may be dropped")

	require.NoError(t, s.Finish(ctx, "j2", exe.JobDone, ""))
	require.NoError(t, s.Finish(ctx, "j1", exe.JobDone, ""))
	require.NoError(t, s.Create(ctx, mk("j4")))
	ids, err := s.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"j4", "j3", "j1"}, ids, "the first job to finish (j2) made room")

	clock.now = clock.now.Add(time.Hour)
	ids, err = s.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"j4", "j3"}, ids, "j1 expired after its retention")
}
