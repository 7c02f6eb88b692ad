// Command exe-executor-localsh is a minimal third-party executor plugin for
// exed, to copy when writing one: its "hosts" are names from its config
// section, and every operation runs on this machine with /bin/sh, once per
// host. Build it into exed's modules directory and select it:
//
//	go build -o modules/exe-executor-localsh ./examples/plugins/exe-executor-localsh
//
//	[runner]
//	executor = localsh
//	[localsh]
//	hosts = web1, web2
package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/section"
)

// localsh implements exe.Executor and executor.Configurer. It performs
// ping, facter and execute, which exe.Only lists: it answers the other
// operations with exe.ErrNotSupported and tells exed up front, so requests
// for them are refused (501) before any job is stored.
type localsh struct {
	exe.Only
	inv atomic.Pointer[inventory.Inventory] // swapped by a reload
}

// Configure reads the [localsh] section. exed calls it at start, so a bad
// value stops the server with this message instead of failing jobs later.
func (l *localsh) Configure(_ context.Context, cfg map[string]string) error {
	s := section.New("localsh", cfg)
	hosts := s.List("hosts", []string{"local"})
	s.Has("concurrency") // every plugin receives the server's [runner] concurrency
	if err := s.Err(); err != nil {
		return exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	if err := s.StrictUnused(); err != nil {
		return exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	inv, err := inventory.Static(hosts...)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "[localsh] hosts: %v", err)
	}
	l.inv.Store(inv)
	return nil
}

// Match selects hosts with Ansible's patterns ("web*:!web2", "all").
func (l *localsh) Match(_ context.Context, pattern string) ([]string, error) {
	return l.inv.Load().Match(pattern)
}

func (l *localsh) Ping(_ context.Context, hosts []string, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostOK})
	}
	return nil
}

func (l *localsh) Facter(_ context.Context, hosts []string, emit exe.Emit) error {
	name, err := os.Hostname()
	if err != nil {
		return err
	}
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostOK, Facts: map[string]any{"hostname": name}})
	}
	return nil
}

// Execute runs the command with sh -c (the command is one argument, never
// spliced into a script) and emits each host's result as soon as it ends.
// A cancel ends the command's whole process group, since the command may
// have started others, and reports the host it interrupted FAILED with
// what it printed so far; exed reports the hosts never started SKIPPED.
func (l *localsh) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	for _, h := range hosts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var stdout, stderr strings.Builder
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", args.Cmd)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second // a process outside the group may hold the output
		err := cmd.Run()
		if ctx.Err() != nil {
			msg := "cancelled"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				msg = "timed out"
			}
			emit(exe.Event{Host: h, Status: exe.HostFailed, Msg: msg,
				Exec: &exe.ExecResult{RTC: -1, Stdout: stdout.String(), Stderr: stderr.String()}})
			return ctx.Err()
		}
		ev := exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: stdout.String(), Stderr: stderr.String()}}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			ev.Status, ev.Exec.RTC, ev.Msg = exe.HostFailed, exit.ExitCode(), exit.Error()
		} else if err != nil {
			return err
		}
		emit(ev)
	}
	return nil
}

func main() {
	inv, _ := inventory.Static("local")
	l := &localsh{Only: exe.Only{exe.OpPing, exe.OpFacter, exe.OpExecute}}
	l.inv.Store(inv)
	executor.Serve(l)
}
