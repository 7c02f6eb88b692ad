package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
)

func ExampleStore() {
	ctx := context.Background()
	store := memory.New(memory.Options{Retention: time.Hour, MaxJobs: 1000})
	job := &exe.Job{JID: "j1", StartAt: time.Now().Unix(),
		Request: exe.Request{Operate: exe.OpDeploy, Targets: []string{"web01"}, Deploy: exe.DeployArgs{Role: "nginx"}}}
	fmt.Println(store.Create(ctx, job))
	// A second deploy on web01 conflicts while the first runs.
	other := &exe.Job{JID: "j2", Request: exe.Request{Operate: exe.OpDeploy, Targets: []string{"web01"}}}
	fmt.Println(store.Create(ctx, other))

	_ = store.Append(ctx, "j1", exe.Event{Host: "web01", Status: exe.HostChanged, Name: "main.sh"})
	_ = store.Finish(ctx, "j1", exe.JobDone, "")
	got, _ := store.Get(ctx, "j1", true)
	fmt.Println(got.State, got.ReturnData["web01"][0].Name)
	// Output:
	// <nil>
	// operate conflict: host web01 is locked by running job j1
	// Done main.sh
}
