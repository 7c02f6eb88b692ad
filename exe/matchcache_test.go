package exe_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counting counts the Match calls that reach its executor.
type counting struct {
	*sshnative.Executor
	matches atomic.Int64
}

func (c *counting) Match(ctx context.Context, pattern string) ([]string, error) {
	c.matches.Add(1)
	return c.Executor.Match(ctx, pattern)
}

// unversioned hides its executor's MatchVersion, as an executor that reads
// its inventory for every Match would have none.
type unversioned struct{ exe.Executor }

func localInventory(t *testing.T, hosts ...string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse(strings.NewReader(strings.Join(hosts, " ansible_connection=local\n")+" ansible_connection=local\n"), "hosts.ini")
	require.NoError(t, err)
	return inv
}

// The Engine keeps an executor's Match answers while its MatchVersion
// says they hold: a second request on the same targets, sync or async,
// does not ask again, and a new inventory is asked at once.
func TestMatchAnswersKeptUntilTheInventoryChanges(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{Inventory: localInventory(t, "a", "b")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	cx := &counting{Executor: x}
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: cx, SyncTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ctx := context.Background()
	ping := exe.Request{Operate: exe.OpPing, Targets: []string{"a"}}

	for range 3 {
		_, err := eng.Submit(ctx, ping)
		require.NoError(t, err)
		out, err := eng.RunSync(ctx, ping)
		require.NoError(t, err)
		assert.Equal(t, exe.HostOK, out["a"].Status)
	}
	assert.EqualValues(t, 1, cx.matches.Load(), "one question for six requests on one host")

	all, err := eng.Match(ctx, "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, all)
	all[0] = "changed by the caller"
	all, err = eng.Match(ctx, "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, all, "each caller gets its own list")
	assert.EqualValues(t, 2, cx.matches.Load())

	x.SetInventory(localInventory(t, "b"))
	_, err = eng.Submit(ctx, ping)
	var noMatch *exe.NoMatchError
	require.ErrorAs(t, err, &noMatch, "the new inventory has no host a")
	assert.Equal(t, []string{"a"}, noMatch.Hosts)
	all, err = eng.Match(ctx, "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, all)
	assert.EqualValues(t, 4, cx.matches.Load())
}

// An executor without a MatchVersion is asked for every request, as its
// inventory may change between two.
func TestMatchAskedEveryTimeWithoutAVersion(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{Inventory: localInventory(t, "a")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	cx := &counting{Executor: x}
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: unversioned{cx}, SyncTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	for range 3 {
		_, err := eng.Submit(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"a"}})
		require.NoError(t, err)
	}
	assert.EqualValues(t, 3, cx.matches.Load())
}

// MatchShared answers as Match does, from the same kept answer, and checks
// the pattern the same way.
func TestMatchSharedAnswersAsMatch(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{Inventory: localInventory(t, "a", "b", "c")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	cx := &counting{Executor: x}
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: cx})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ctx := context.Background()
	for _, p := range []string{"all", "", "b:c", "!a", "nothing"} {
		want, err := eng.Match(ctx, p)
		require.NoError(t, err, p)
		got, err := eng.MatchShared(ctx, p)
		require.NoError(t, err, p)
		assert.Equal(t, want, got, p)
	}
	assert.EqualValues(t, 5, cx.matches.Load(), "one question per pattern")
	_, err = eng.MatchShared(ctx, "\xff")
	assert.ErrorIs(t, err, exe.ErrInvalid)
}
