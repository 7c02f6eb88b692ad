package ansible_test

import (
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/executortest"
)

// TestConformance runs the executor suite on the ansible executor with two
// hosts over a real sshd, in process and through the plugin protocol's
// shims.
func TestConformance(t *testing.T) {
	hosts := []string{"h1", "h2"}
	newX := func(t *testing.T) exe.Executor { return newFixture(t).x }
	t.Run("in-process", func(t *testing.T) {
		executortest.Run(t, executortest.Options{New: newX, Hosts: hosts})
	})
	t.Run("plugin", func(t *testing.T) {
		executortest.Run(t, executortest.Options{Hosts: hosts, New: func(t *testing.T) exe.Executor {
			return executor.TestClient(t, newX(t), nil)
		}})
	})
}
