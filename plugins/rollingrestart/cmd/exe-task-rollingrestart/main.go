// Command exe-task-rollingrestart serves the rolling-restart task as an
// exed task plugin, for a modules directory; the exed binary also serves it
// built in.
package main

import (
	"github.com/0ops/exed/plugins/rollingrestart"
	"github.com/0ops/exed/task"
)

func main() { task.Serve(rollingrestart.Task{}) }
