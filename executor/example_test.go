package executor_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
)

// Start a plugin binary (here the example exe-executor-localsh, built by
// TestMain) and use it as any exe.Executor.
func ExampleStart() {
	x, err := executor.Start(context.Background(), executor.Options{
		Name:   "localsh",
		Path:   bins["exe-executor-localsh"], // e.g. "modules/exe-executor-localsh"
		Config: map[string]string{"hosts": "web1, web2"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Close()
	hosts, _ := x.Match(context.Background(), "web*")
	_ = x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: "echo hello"}, func(ev exe.Event) {
		fmt.Println(ev.Host, ev.Status, strings.TrimSpace(ev.Exec.Stdout))
	})
	// Output:
	// web1 CHANGED hello
	// web2 CHANGED hello
}
