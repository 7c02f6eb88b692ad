// Command exe-task-pingwave is a minimal task plugin for exed, to copy when
// writing one: it pings the target hosts in waves of `wave` hosts through
// the server's executor, announcing each wave, and stops at the first wave
// with a host that does not answer. Build it into exed's modules directory:
//
//	go build -o modules/exe-task-pingwave ./examples/plugins/exe-task-pingwave
//
// and start it with POST /tasks {"tasktype": "pingwave", "targets": [...],
// "taskopts": {"wave": 2}}.
package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/task"
)

type pingwave struct{}

// Info is what GET /tasks lists; POST /tasks validates taskopts against
// Options (and fills in defaults) before the task runs.
func (pingwave) Info(context.Context) (exe.TaskInfo, error) {
	return exe.TaskInfo{
		Type:        "pingwave",
		Description: "ping the targets in waves, stopping at the first wave with a failure",
		Options: exe.Schema{Type: "object", Properties: map[string]exe.Property{
			"wave": {Type: []string{"integer"}, Description: "hosts per wave", Default: 1},
		}},
	}, nil
}

// Run drives exec, which is the server's executor reached over the plugin
// broker; events it emits go to the job as the executor reports them.
func (pingwave) Run(ctx context.Context, exec exe.Executor, hosts []string, args exe.TaskArgs, emit exe.Emit) error {
	size := 1
	if v, ok := args.Options["wave"].(float64); ok && v >= 1 {
		size = int(v)
	}
	for start := 0; start < len(hosts); start += size {
		if err := ctx.Err(); err != nil {
			return err
		}
		wave := hosts[start:min(start+size, len(hosts))]
		emit(exe.Event{Host: exe.AnnounceHost, Status: exe.HostOK, Name: fmt.Sprintf("wave %d", start/size+1), Msg: fmt.Sprint(wave)})
		var mu sync.Mutex
		failed := 0
		err := exec.Ping(ctx, wave, func(ev exe.Event) {
			mu.Lock()
			if ev.Status == exe.HostUnreachable || ev.Status == exe.HostFailed {
				failed++
			}
			mu.Unlock()
			emit(ev)
		})
		if err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("wave %d: %d hosts did not answer; later waves not run", start/size+1, failed)
		}
	}
	return nil
}

func main() {
	task.Serve(pingwave{})
}
