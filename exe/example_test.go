package exe_test

import (
	"context"
	"fmt"

	"github.com/0ops/exed/dispatch/local"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
)

// The embedded default: a memory store, the in-process dispatcher and the
// sshnative executor, whose default inventory holds localhost.
func ExampleEngine() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	executor, _ := sshnative.New(sshnative.Config{})
	dispatcher := local.New(&exe.Runner{Store: store, Executor: executor}, local.Options{})
	defer dispatcher.Shutdown(ctx)
	engine, _ := exe.NewEngine(exe.Config{Store: store, Dispatcher: dispatcher, Executor: executor})

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
