package executortest_test

import "github.com/0ops/exed/executortest"

// An executor's test runs the suite on it twice: in process, and through
// the plugin protocol as a plugin process would serve it.
func ExampleRun() {
	// In myexecutor_test.go:
	//
	//	func TestConformance(t *testing.T) {
	//		opts := executortest.Options{Hosts: []string{"web1", "web2"}}
	//		t.Run("in process", func(t *testing.T) {
	//			opts.New = func(t *testing.T) exe.Executor { return myexecutor.New() }
	//			executortest.Run(t, opts)
	//		})
	//		t.Run("plugin", func(t *testing.T) {
	//			opts.New = func(t *testing.T) exe.Executor { return executor.TestClient(t, myexecutor.New(), nil) }
	//			executortest.Run(t, opts)
	//		})
	//	}
	_ = executortest.Run
}
