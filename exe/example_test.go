package exe_test

import (
	"context"
	"fmt"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
)

// The embedded default: a memory store and the sshnative executor, whose
// default inventory holds localhost; jobs run in this process (the
// LocalDispatcher, as no Dispatcher is given).
func ExampleEngine() {
	ctx := context.Background()
	executor, _ := sshnative.New(sshnative.Config{})
	engine, _ := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: executor})
	defer engine.Shutdown(ctx)

	jid, err := engine.Submit(ctx, exe.Request{
		Operate: exe.OpExecute,
		Targets: []string{"localhost"},
		Execute: exe.ExecuteArgs{Cmd: "echo hello"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	job, _ := engine.Follow(ctx, jid, func(ev exe.Event) error {
		fmt.Printf("%s: %s rtc=%d stdout=%q\n", ev.Host, ev.Status, ev.Exec.RTC, ev.Exec.Stdout)
		return nil
	})
	fmt.Println("job:", job.State)
	// Output:
	// localhost: CHANGED rtc=0 stdout="hello\n"
	// job: Done
}

// The in-process dispatcher with bounds of its own. Shutdown gives running
// jobs its grace period, then cancels them: a job cut short ends Failure
// "server shutdown", and so does one that never left the queue.
func ExampleNewLocalDispatcher() {
	ctx := context.Background()
	executor, _ := sshnative.New(sshnative.Config{})
	engine, _ := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: executor,
		Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: 2, Queue: 16, Grace: 100 * time.Millisecond})})

	jid, _ := engine.Submit(ctx, exe.Request{Operate: exe.OpExecute,
		Targets: []string{"localhost"}, Execute: exe.ExecuteArgs{Cmd: "sleep 30"}})
	_ = engine.Shutdown(ctx)
	job, _ := engine.Job(ctx, jid, false)
	fmt.Println(job.State, job.Error)
	// Output: Failure server shutdown
}

func ExampleSchema_Validate() {
	schema := exe.Schema{Type: "object", Properties: map[string]exe.Property{
		"service": {Type: []string{"string"}},
		"batch":   {Type: []string{"integer", "string"}, Default: 1.0},
	}, Required: []string{"service"}}
	opts, err := schema.Validate(map[string]any{"service": "nginx"})
	fmt.Println(opts, err)
	_, err = schema.Validate(map[string]any{"service": "nginx", "batch": true})
	fmt.Println(err)
	// Output:
	// map[batch:1 service:nginx] <nil>
	// taskopts: option "batch" must be of type integer or string
}
