package sshnative_test

import (
	"context"
	"fmt"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/plugins/sshnative"
)

func ExampleExecutor_Execute() {
	x, _ := sshnative.New(sshnative.Config{}) // default inventory: localhost
	hosts, _ := x.Match(context.Background(), "*")
	_ = x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: "echo hello; exit 3"}, func(ev exe.Event) {
		fmt.Printf("%s %s rtc=%d stdout=%q\n", ev.Host, ev.Status, ev.Exec.RTC, ev.Exec.Stdout)
	})
	// Output: localhost FAILED rtc=3 stdout="hello\n"
}
