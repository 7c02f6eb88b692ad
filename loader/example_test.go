package loader_test

import (
	"fmt"
	"sort"

	"github.com/0ops/exed/loader"
)

// Discover lists the plugins a server would start: the binary's built-ins
// and the exe-executor-NAME / exe-task-NAME files of a modules directory.
func ExampleDiscover() {
	cat, warnings := loader.Discover("/nonexistent/modules", loader.Standard)
	var executors, tasks []string
	for name := range cat.Executors {
		executors = append(executors, name)
	}
	for name := range cat.Tasks {
		tasks = append(tasks, name)
	}
	sort.Strings(executors)
	sort.Strings(tasks)
	fmt.Println("executors:", executors)
	fmt.Println("tasks:", tasks)
	fmt.Println("warnings:", len(warnings))
	// Output:
	// executors: [ansible sshnative]
	// tasks: [rollingrestart]
	// warnings: 0
}
