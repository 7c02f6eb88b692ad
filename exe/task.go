package exe

import "context"

// Task is a long operation composed of executor calls, such as a rolling
// restart. Tasks run as async jobs only, hold their hosts like a deploy does,
// and drive whatever Executor the server runs.
type Task interface {
	// Info describes the task: its type, what it does and its options.
	Info(ctx context.Context) (TaskInfo, error)
	// Run runs the task on hosts with options already validated against
	// Info's schema (defaults filled in). It emits events like an executor
	// does (ANNOUNCE events mark steps) and honours ctx between steps.
	Run(ctx context.Context, exec Executor, hosts []string, args TaskArgs, emit Emit) error
}

// TaskInfo describes a task plugin. Its JSON form is one element of GET /tasks.
type TaskInfo struct {
	Type        string `json:"type"`
	Description string `json:"description"`
	Options     Schema `json:"options"`
}
