package local_test

import (
	"context"
	"fmt"
	"time"

	"github.com/0ops/exed/dispatch/local"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
)

// The dispatcher runs stored jobs with a Runner; Shutdown fails what it
// could not finish within the grace period.
func ExampleDispatcher() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	executor, _ := sshnative.New(sshnative.Config{})
	d := local.New(&exe.Runner{Store: store, Executor: executor},
		local.Options{Workers: 2, Queue: 16, Grace: 100 * time.Millisecond})

	job := &exe.Job{JID: "slow", Request: exe.Request{Operate: exe.OpExecute,
		Targets: []string{"localhost"}, Execute: exe.ExecuteArgs{Cmd: "sleep 30"}}}
	_ = store.Create(ctx, job)
	_ = d.Dispatch(ctx, job.JID)

	_ = d.Shutdown(ctx)
	got, _ := store.Get(ctx, "slow", false)
	fmt.Println(got.State, got.Error)
	// Output: Failure server shutdown
}
