package http_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nilWhenEmpty answers an empty Match with a nil slice, which
// exe.Executor's contract ("an empty list") allows in Go.
type nilWhenEmpty struct{ *sshnative.Executor }

func (x nilWhenEmpty) Match(ctx context.Context, pattern string) ([]string, error) {
	hosts, err := x.Executor.Match(ctx, pattern)
	if len(hosts) == 0 {
		return nil, err
	}
	return hosts, err
}

// GET /target on a pattern that selects nothing answers [], never null,
// whatever empty list the executor gives.
func TestTargetOfNoHostIsAnArray(t *testing.T) {
	x, err := sshnative.New(sshnative.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: nilWhenEmpty{x}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ts := httptest.NewServer(exehttp.New(eng, exehttp.Options{}))
	t.Cleanup(ts.Close)
	res, err := ts.Client().Get(ts.URL + "/target?pattern=web*")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "[]\n", string(b))
}
