package rollingrestart_test

import (
	"context"
	"fmt"

	"github.com/0ops/exed/plugins/rollingrestart"
)

// POST /tasks validates taskopts against the task's schema and fills in
// its defaults before anything runs.
func ExampleTask_Info() {
	info, _ := rollingrestart.Task{}.Info(context.Background())
	opts, err := info.Options.Validate(map[string]any{"service": "nginx", "batch": "25%"})
	fmt.Println(info.Type, opts["batch"], opts["max_fail"], opts["graceful"], err)
	_, err = info.Options.Validate(map[string]any{"service": "nginx", "batch": "a quarter"})
	fmt.Println(err)
	// Output:
	// rollingrestart 25% 0 false <nil>
	// taskopts: option "batch": "a quarter" does not match ^[0-9]+%$
}
