package sshnative

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A local host is seen as local through either run-ID wrapper, so that a
// ping of it starts no process with the journal on or off.
func TestConnForLocalIsLocal(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no journal": {},
		"journal":    {StateDir: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			x, err := New(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = x.Close() })
			v := x.view()
			h, ok := v.inv.HostVars("localhost")
			require.True(t, ok)
			c, err := x.connFor(v, h)
			require.NoError(t, err)
			assert.True(t, isLocal(c), "%T", c)
		})
	}
}
