package dispatchtest_test

import (
	"testing"

	"github.com/0ops/exed/dispatchtest"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
)

// conformance is a dispatcher's conformance test: here the in-process
// LocalDispatcher's (exe's TestLocalDispatcherConformance runs it), on a
// fresh memory store for each check, with the workers and grace period
// the check asks for.
func conformance(t *testing.T) {
	dispatchtest.Run(t, func(t *testing.T, opts dispatchtest.Options) (exe.JobStore, exe.Dispatcher) {
		return memory.New(memory.Options{}), exe.NewLocalDispatcher(exe.LocalOptions{Workers: opts.Workers, Grace: opts.Grace})
	})
}

// A dispatcher's package calls conformance from a test of its own:
//
//	func TestConformance(t *testing.T) { conformance(t) }
func ExampleRun() {
	_ = conformance
}
