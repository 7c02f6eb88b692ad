package storetest_test

import "github.com/0ops/exed/jobstore/storetest"

func ExampleRun() {
	// In mystore_test.go:
	//
	//	func TestConformance(t *testing.T) {
	//		storetest.Run(t, func(t *testing.T, opts storetest.Options) exe.JobStore {
	//			s := mystore.New(mystore.Options{Retention: opts.Retention})
	//			t.Cleanup(func() { s.Close() })
	//			return s
	//		})
	//	}
	_ = storetest.Run
}
