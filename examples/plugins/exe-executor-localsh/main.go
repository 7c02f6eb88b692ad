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
	"path"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
)

// localsh implements exe.Executor and executor.Configurer.
type localsh struct {
	hosts []string
}

// Configure reads the [localsh] section. exed calls it at start, so a bad
// value stops the server with this message instead of failing jobs later.
func (l *localsh) Configure(_ context.Context, cfg map[string]string) error {
	l.hosts = []string{"local"}
	for key, value := range cfg {
		switch key {
		case "hosts":
			l.hosts = nil
			for _, h := range strings.Split(value, ",") {
				if h = strings.TrimSpace(h); h != "" {
					l.hosts = append(l.hosts, h)
				}
			}
			if len(l.hosts) == 0 {
				return exe.Errorf(exe.ErrInvalid, "[localsh] hosts: at least one host name is required")
			}
		case "concurrency": // every plugin receives the server's [runner] concurrency
		default:
			return exe.Errorf(exe.ErrInvalid, "[localsh] %s: unknown option", key)
		}
	}
	return nil
}

// Match selects hosts by a comma-separated union of globs ("all" selects
// every host). exed resolves a request's targets with one such union.
func (l *localsh) Match(_ context.Context, pattern string) ([]string, error) {
	out := []string{}
	for _, h := range l.hosts {
		for _, p := range strings.Split(pattern, ",") {
			ok, err := path.Match(p, h)
			if err != nil {
				return nil, exe.Errorf(exe.ErrInvalid, "pattern: %v", err)
			}
			if ok || p == "all" {
				out = append(out, h)
				break
			}
		}
	}
	return out, nil
}

func (l *localsh) Ping(_ context.Context, hosts []string, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.OK})
	}
	return nil
}

func (l *localsh) Facter(_ context.Context, hosts []string, emit exe.Emit) error {
	name, err := os.Hostname()
	if err != nil {
		return err
	}
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.OK, Facts: map[string]any{"hostname": name}})
	}
	return nil
}

// Execute runs the command with sh -c (the command is one argument, never
// spliced into a script) and emits each host's result as soon as it ends.
func (l *localsh) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	for _, h := range hosts {
		var stdout, stderr strings.Builder
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", args.Cmd)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ev := exe.Event{Host: h, Status: exe.Changed, Exec: &exe.ExecResult{Stdout: stdout.String(), Stderr: stderr.String()}}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			ev.Status, ev.Exec.RTC, ev.Msg = exe.Failed, exit.ExitCode(), exit.Error()
		} else if err != nil {
			return err
		}
		emit(ev)
	}
	return nil
}

// Service and Deploy are not offered: the API answers them with
// "operation not supported by this executor".
func (l *localsh) Service(context.Context, []string, exe.ServiceArgs, exe.Emit) error {
	return exe.ErrNotSupported
}

func (l *localsh) Deploy(context.Context, []string, exe.DeployArgs, exe.Emit) error {
	return exe.ErrNotSupported
}

func main() {
	executor.Serve(&localsh{hosts: []string{"local"}})
}
