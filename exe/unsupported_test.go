package exe_test

import (
	"context"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pingOnly is the smallest Go executor: Match and one operation, which
// exe.Only lists.
type pingOnly struct {
	exe.Only
	inv *inventory.Inventory
}

func (x *pingOnly) Match(_ context.Context, pattern string) ([]string, error) {
	return x.inv.Match(pattern)
}

func (x *pingOnly) Ping(_ context.Context, hosts []string, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostOK})
	}
	return nil
}

// An operation the executor does not declare is refused before anything
// is stored, for sync and async requests alike.
func TestCapabilitiesRefuseUpFront(t *testing.T) {
	inv, err := inventory.Static("web[1:2]")
	require.NoError(t, err)
	x := &pingOnly{Only: exe.Only{exe.OpPing}, inv: inv}
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x})
	require.NoError(t, err)
	defer eng.Shutdown(context.Background())
	ctx := context.Background()

	out, err := eng.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"web1", "web2"}})
	require.NoError(t, err)
	assert.Len(t, out, 2)
	for _, op := range []exe.Operate{exe.OpFacter, exe.OpExecute} {
		req := exe.Request{Operate: op, Targets: []string{"web1"}, Execute: exe.ExecuteArgs{Cmd: "true"}}
		_, err = eng.RunSync(ctx, req)
		assert.ErrorIs(t, err, exe.ErrNotSupported, op)
		_, err = eng.Submit(ctx, req)
		assert.ErrorIs(t, err, exe.ErrNotSupported, op)
		assert.EqualError(t, err, string(op)+" is not supported by this executor")
	}
	ids, err := store.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "nothing stored")
	// The embedded operations answer ErrNotSupported rather than panic.
	assert.ErrorIs(t, x.Deploy(ctx, []string{"web1"}, exe.DeployArgs{Role: "r"}, func(exe.Event) {}), exe.ErrNotSupported)
	assert.True(t, exe.Supports(x, exe.OpPing))
	assert.False(t, exe.Supports(x, exe.OpService))
}

// both embeds exe.Unsupported beside exe.Only, as executors written before
// Only answered the operations did: it still builds, and Only declares.
type both struct {
	exe.Unsupported
	exe.Only
}

func (both) Match(context.Context, string) ([]string, error) { return []string{"web1"}, nil }

func (both) Ping(_ context.Context, hosts []string, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostOK})
	}
	return nil
}

func TestUnsupportedBesideOnly(t *testing.T) {
	var x exe.Executor = both{Only: exe.Only{exe.OpPing}}
	assert.True(t, exe.Supports(x, exe.OpPing))
	assert.False(t, exe.Supports(x, exe.OpFacter))
	assert.ErrorIs(t, x.Facter(context.Background(), []string{"web1"}, func(exe.Event) {}), exe.ErrNotSupported)
	assert.NoError(t, x.Ping(context.Background(), []string{"web1"}, func(exe.Event) {}))
}
