package dispatchtest_test

import "github.com/0ops/exed/dispatchtest"

// A dispatcher's test runs the suite on a fresh store and dispatcher for
// each of its checks.
func ExampleRun() {
	// In mydispatch_test.go:
	//
	//	func TestConformance(t *testing.T) {
	//		dispatchtest.Run(t, func(t *testing.T, opts dispatchtest.Options) (exe.JobStore, exe.Dispatcher) {
	//			store := memory.New(memory.Options{})
	//			return store, mydispatch.New(store, mydispatch.Options{Workers: opts.Workers, Grace: opts.Grace})
	//		})
	//	}
	_ = dispatchtest.Run
}
