package exe_test

import (
	"context"
	"errors"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oneStep stores and queues in one call, and records what it was given.
type oneStep struct {
	store  exe.JobStore
	got    []string
	refuse bool
}

func (d *oneStep) CreateAndDispatch(ctx context.Context, job *exe.Job) error {
	if d.refuse {
		return exe.ErrBusy
	}
	d.got = append(d.got, job.JID)
	return d.store.Create(ctx, job)
}
func (d *oneStep) Dispatch(context.Context, string) error {
	return errors.New("Dispatch must not be called")
}
func (d *oneStep) JobStore() exe.JobStore               { return d.store }
func (d *oneStep) Cancel(context.Context, string) error { return nil }
func (d *oneStep) Start(exe.JobRunner) error            { return nil }
func (d *oneStep) Shutdown(context.Context) error       { return nil }

func TestSubmitUsesStoringDispatcher(t *testing.T) {
	store := memory.New(memory.Options{})
	d := &oneStep{store: store}
	eng, err := exe.NewEngine(exe.Config{Store: store, Dispatcher: d, Executor: &plugintest.Executor{}})
	require.NoError(t, err)
	jid, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"a"}})
	require.NoError(t, err)
	assert.Equal(t, []string{jid}, d.got)
	job, err := store.Get(context.Background(), jid, false)
	require.NoError(t, err)
	assert.Equal(t, exe.JobRunning, job.State)

	d.refuse = true
	_, err = eng.Submit(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"a"}})
	assert.ErrorIs(t, err, exe.ErrBusy)
	ids, _ := store.List(context.Background())
	assert.Len(t, ids, 1, "a refused job is not stored")
}
