package sshnative_test

import (
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/executortest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the executor suite on sshnative's two connection
// kinds, local and SSH to a real sshd, in process and through the plugin
// protocol's shims.
func TestConformance(t *testing.T) {
	local := func(t *testing.T) exe.Executor {
		inv, err := inventory.Parse(strings.NewReader("[local]\nla ansible_connection=local\nlb ansible_connection=local\n"), "local.ini")
		require.NoError(t, err)
		x, err := sshnative.New(sshnative.Config{Inventory: inv})
		require.NoError(t, err)
		t.Cleanup(func() { _ = x.Close() })
		return x
	}
	overSSH := func(t *testing.T) exe.Executor {
		return newFleet(t, 2, sshnative.Config{}).exec
	}
	for name, c := range map[string]struct {
		new   func(t *testing.T) exe.Executor
		hosts []string
	}{
		"local": {local, []string{"la", "lb"}},
		"ssh":   {overSSH, []string{"h01", "h02"}},
	} {
		t.Run(name+"/in-process", func(t *testing.T) {
			executortest.Run(t, executortest.Options{New: c.new, Hosts: c.hosts})
		})
		t.Run(name+"/plugin", func(t *testing.T) {
			executortest.Run(t, executortest.Options{Hosts: c.hosts, New: func(t *testing.T) exe.Executor {
				return executor.TestClient(t, c.new(t), nil)
			}})
		})
	}
}
