// Command embed is a Go service that embeds exed: its own page at GET /
// and exed's API under /exe/ on the same mux, with jobs kept in memory,
// an executor of its own (shell, below) and the rollingrestart task,
// which runs as a plugin process that this binary serves itself.
//
//	ADDR=127.0.0.1:8080 go run ./examples/embed
//	curl '127.0.0.1:8080/exe/ping?target=localhost'
//
// SIGTERM or SIGINT stops it: follow streams end with a last line that
// says so, running jobs get their grace period, then the plugin stops.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/loader"
	exehttp "github.com/0ops/exed/transport/http"
)

func main() {
	loader.Standard.Serve(os.Args[1:]) // this binary is started again to serve the task plugin
	plugins, err := loader.Load(context.Background(), loader.Options{Builtins: loader.Standard, Tasks: []string{"rollingrestart"}})
	if err != nil {
		log.Fatal(err)
	}
	engine, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: newShell(), Tasks: plugins.Tasks})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux() // the service's own mux, and its page
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "the service's own page") })
	exehttp.New(engine, exehttp.Options{Prefix: "/exe"}).Register(mux)
	srv := &http.Server{Addr: cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8080"), Handler: mux}
	if err := exehttp.ListenAndServe(context.Background(), srv, engine, exehttp.ServeOptions{Then: []exehttp.Shutdowner{plugins}}); err != nil {
		log.Fatal(err)
	}
}

// shell is the service's own executor: its one host is this machine,
// which it pings and runs commands on with /bin/sh. exe.Only lists these
// two and answers the others, which the API refuses (501) before any job
// is stored. (The rollingrestart task restarts services, which shell does
// not do: its jobs here end saying so.)
type shell struct {
	exe.Only
	inv *inventory.Inventory
}

func newShell() *shell {
	inv, _ := inventory.Static("localhost")
	return &shell{Only: exe.Only{exe.OpPing, exe.OpExecute}, inv: inv}
}

// Match selects hosts with Ansible's patterns.
func (s *shell) Match(_ context.Context, pattern string) ([]string, error) {
	return s.inv.Match(pattern)
}

// Ping runs `true`: a host that can run a command answers.
func (s *shell) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return s.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: "true"}, func(ev exe.Event) {
		if ev.Status == exe.HostChanged {
			ev.Status = exe.HostOK
		}
		ev.Exec = nil
		emit(ev)
	})
}

// Execute runs the command with sh -c once per host, and reports each
// host as it ends. A cancel ends the command's whole process group (it
// may have started others) and reports the host FAILED with the cause and
// what it printed so far.
func (s *shell) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	for _, h := range hosts {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", args.Cmd)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second // a process that left the group may hold the output
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		ev := exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: string(out), Stderr: stderr.String()}}
		var exit *exec.ExitError
		switch {
		case ctx.Err() != nil:
			ev.Status, ev.Msg, ev.Exec.RTC = exe.HostFailed, context.Cause(ctx).Error(), -1
		case errors.As(err, &exit):
			ev.Status, ev.Msg, ev.Exec.RTC = exe.HostFailed, exit.Error(), exit.ExitCode()
		case err != nil:
			return err
		}
		emit(ev)
		if ctx.Err() != nil {
			return ctx.Err() // the hosts left never started
		}
	}
	return nil
}
