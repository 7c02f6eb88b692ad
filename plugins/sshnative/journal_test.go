package sshnative

import (
	"os"
	"testing"

	"github.com/0ops/exed/inventory"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A long-lived process's journal stays small: ended commands are dropped
// when it is rewritten, and what a reaper reads from it is exactly the
// commands still running.
func TestJournalCompacts(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir, hclog.NewNullLogger())
	require.NoError(t, err)
	h := &inventory.Host{Name: "web1", Vars: map[string]any{"ansible_host": "10.0.0.1", "ansible_port": 2222, "color": "blue"}}
	running := j.begin(inventory.VarsOf(h))
	for i := 0; i < 20000; i++ {
		j.end(j.begin(inventory.VarsOf(h)))
	}
	st, err := os.Stat(j.path)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(compactAt+200), "rewritten once past compactAt")

	// As a reaper sees it once the process is gone (the lock released
	// without the file removed, as after kill -9).
	require.NoError(t, j.f.Close())
	dj, err := lockDead(j.path)
	require.NoError(t, err)
	require.NotNil(t, dj)
	defer dj.done()
	require.Len(t, dj.byHost["web1"], 1)
	e := dj.byHost["web1"][0]
	assert.Equal(t, running, e.id)
	assert.Equal(t, map[string]any{"ansible_connection": "ssh", "ansible_host": "10.0.0.1", "ansible_port": "2222"}, e.host.Vars,
		"only what reaching the host takes")
}

// What the journal adds to each command: its begin and end lines.
func BenchmarkJournalBeginEnd(b *testing.B) {
	j, err := openJournal(b.TempDir(), hclog.NewNullLogger())
	require.NoError(b, err)
	defer j.close()
	h := &inventory.Host{Name: "web1", Vars: map[string]any{"ansible_host": "10.0.0.1", "ansible_port": 2222}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j.end(j.begin(inventory.VarsOf(h)))
		}
	})
}
