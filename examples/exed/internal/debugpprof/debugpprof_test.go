package debugpprof_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/0ops/exed/examples/exed/internal/debugpprof"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOffWithoutTheVariable(t *testing.T) {
	t.Setenv(debugpprof.Env, "")
	addr, err := debugpprof.Start("exed")
	require.NoError(t, err)
	assert.Empty(t, addr)
}

// The process serves its profiles where its .addr file says.
func TestServesAndWritesTheAddress(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(debugpprof.Env, dir)
	t.Setenv(debugpprof.RateEnv, "1000")
	addr, err := debugpprof.Start("exed-worker")
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "exed-worker-"+strconv.Itoa(os.Getpid())+".addr"))
	require.NoError(t, err)
	assert.Equal(t, addr, strings.TrimSpace(string(b)))
	res, err := http.Get("http://" + addr + "/debug/pprof/block?debug=1")
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "--- contention:")
}

func TestBadRate(t *testing.T) {
	t.Setenv(debugpprof.Env, t.TempDir())
	t.Setenv(debugpprof.RateEnv, "often")
	_, err := debugpprof.Start("exed")
	assert.EqualError(t, err, `EXED_PPROF_RATE="often": want a whole number, 0 or more`)
}
