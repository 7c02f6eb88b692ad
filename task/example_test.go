package task_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/task"
)

// Start a task plugin (here the example exe-task-pingwave, built by
// TestMain) and run it with an executor of this process: the plugin calls
// back into it through go-plugin's broker.
func ExampleStart() {
	t, err := task.Start(context.Background(), task.Options{
		Name: "pingwave",
		Path: bins["exe-task-pingwave"], // e.g. "modules/exe-task-pingwave"
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	info, _ := t.Info(context.Background())
	opts, _ := info.Options.Validate(map[string]any{"wave": 2})
	err = t.Run(context.Background(), &plugintest.Executor{}, []string{"a", "b", "c"},
		exe.TaskArgs{Type: info.Type, Options: opts}, func(ev exe.Event) {
			fmt.Println(strings.TrimSpace(fmt.Sprint(ev.Host, " ", ev.Status, " ", ev.Name)))
		})
	fmt.Println("error:", err)
	// Output:
	// __ANNOUNCE__ OK wave 1
	// a OK
	// b OK
	// __ANNOUNCE__ OK wave 2
	// c OK
	// error: <nil>
}
