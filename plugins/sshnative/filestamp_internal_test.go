package sshnative

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A file modified so close to its reading that a rewrite of the same size
// could keep its stamp is read again at its next use, until a reading
// comes well after its last change; then an unchanged file is not read
// again.
func TestKnownHostsRacilyCleanReadAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(path, []byte("host.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcNgDT2jXPJ2sAZzsBJ2JHEVhxDnW5yEmUOqEfvUDhe\n"), 0o600))
	hk := &hostKeys{}
	set := hk.set([]string{path, filepath.Join(t.TempDir(), "missing")})
	first := set.current()
	require.NoError(t, first.err)
	require.NotNil(t, first.db)
	assert.True(t, first.racy, "just written")
	assert.NotSame(t, first, set.current(), "read again: the stamp does not vouch for it")
	assert.Equal(t, uint64(2), hk.parses.Load())

	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, old, old))
	settled := set.current()
	assert.False(t, settled.racy)
	assert.Same(t, settled, set.current())
	assert.Equal(t, uint64(3), hk.parses.Load())

	assert.True(t, racy([]fileStamp{stampOf(path)}, old.Add(racyWindow)))
	assert.False(t, racy([]fileStamp{stampOf(path)}, old.Add(racyWindow+time.Nanosecond)))
	assert.False(t, racy([]fileStamp{{}}, time.Now()), "a missing file")
}
