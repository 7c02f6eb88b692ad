package exed_test

import (
	"context"
	"fmt"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
)

// greeter is an executor of one's own: exe.Only lists what it does and
// answers the rest, inventory.Static gives Match Ansible's patterns.
type greeter struct {
	exe.Only
	inv *inventory.Inventory
}

func (g *greeter) Match(_ context.Context, pattern string) ([]string, error) {
	return g.inv.Match(pattern)
}

func (g *greeter) Execute(_ context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: args.Cmd + " from " + h}})
	}
	return nil
}

// exed's flow in one process: an Engine on a memory store and an
// executor, an async job stored before its ID is returned, then followed
// event by event to its end.
func Example() {
	ctx := context.Background()
	inv, _ := inventory.Static("web[1:2]")
	engine, _ := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}),
		Executor: &greeter{Only: exe.Only{exe.OpExecute}, inv: inv}})
	defer engine.Shutdown(ctx)

	jid, err := engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"web1", "web2"},
		Execute: exe.ExecuteArgs{Cmd: "hello"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	job, _ := engine.Follow(ctx, jid, func(ev exe.Event) error {
		fmt.Println(ev.Host, ev.Status, ev.Exec.Stdout)
		return nil
	})
	fmt.Println(job.State)
	_, err = engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"web1"}})
	fmt.Println(err)
	// Output:
	// web1 CHANGED hello from web1
	// web2 CHANGED hello from web2
	// Done
	// ping is not supported by this executor
}
