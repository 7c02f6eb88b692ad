package executortest_test

import (
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/executortest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
)

// conformance is an executor's conformance test: here sshnative's (its
// TestConformance runs it), on two hosts that are this machine
// (ansible_connection=local). It runs the suite on the executor in
// process, then through the plugin protocol as a plugin process serves
// it (executor.TestClient), so that the executor behaves the same
// embedded or as a plugin.
func conformance(t *testing.T) {
	newExecutor := func(t *testing.T) exe.Executor {
		inv, err := inventory.Parse(strings.NewReader("la ansible_connection=local\nlb ansible_connection=local\n"), "hosts.ini")
		if err != nil {
			t.Fatal(err)
		}
		x, err := sshnative.New(sshnative.Config{Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = x.Close() })
		return x
	}
	hosts := []string{"la", "lb"}
	t.Run("in-process", func(t *testing.T) {
		executortest.Run(t, executortest.Options{New: newExecutor, Hosts: hosts})
	})
	t.Run("plugin", func(t *testing.T) {
		executortest.Run(t, executortest.Options{Hosts: hosts, New: func(t *testing.T) exe.Executor {
			return executor.TestClient(t, newExecutor(t), nil)
		}})
	})
}

// An executor's package calls conformance from a test of its own:
//
//	func TestConformance(t *testing.T) { conformance(t) }
func ExampleRun() {
	_ = conformance
}
