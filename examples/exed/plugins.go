package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/ansible"
	"github.com/0ops/exed/plugins/rollingrestart"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/0ops/exed/task"
	"github.com/hashicorp/go-hclog"
)

// Plugin binaries in [runner] modules are named by kind.
const (
	executorPrefix = "exe-executor-"
	taskPrefix     = "exe-task-"
)

// builtinExecutors are the executors this binary serves itself. The server
// runs them like any plugin, in a process of their own: `exed plugin
// executor NAME`.
var builtinExecutors = map[string]func() exe.Executor{
	"sshnative": func() exe.Executor { return &sshnativePlugin{} },
	"ansible":   func() exe.Executor { return &ansible.Plugin{} },
}

// builtinTasks are the task plugins this binary serves itself.
var builtinTasks = map[string]func() exe.Task{
	"rollingrestart": func() exe.Task { return rollingrestart.Task{} },
}

// pluginRef is a plugin found at start: a built-in or a module binary.
type pluginRef struct {
	Kind, Name string
	Path       string
	Args       []string
	Builtin    bool
}

func (r pluginRef) source() string {
	if r.Builtin {
		return "built-in (" + r.Path + " " + strings.Join(r.Args, " ") + ")"
	}
	return r.Path
}

// discover lists the plugins of each kind by name: built-ins, overridden by
// executable files named exe-executor-NAME and exe-task-NAME in modules.
func discover(modules string) (executors, tasks map[string]pluginRef, warnings []string) {
	executors, tasks = map[string]pluginRef{}, map[string]pluginRef{}
	self, err := os.Executable()
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("built-in plugins unavailable: %v", err))
	} else {
		for name := range builtinExecutors {
			executors[name] = pluginRef{Kind: "executor", Name: name, Path: self, Args: []string{"plugin", "executor", name}, Builtin: true}
		}
		for name := range builtinTasks {
			tasks[name] = pluginRef{Kind: "task", Name: name, Path: self, Args: []string{"plugin", "task", name}, Builtin: true}
		}
	}
	if modules == "" {
		return executors, tasks, warnings
	}
	entries, err := os.ReadDir(modules)
	if err != nil {
		if !os.IsNotExist(err) {
			warnings = append(warnings, fmt.Sprintf("[runner] modules: %v", err))
		}
		return executors, tasks, warnings
	}
	for _, e := range entries {
		var kind string
		var into map[string]pluginRef
		name := e.Name()
		switch {
		case strings.HasPrefix(name, executorPrefix):
			kind, into, name = "executor", executors, strings.TrimPrefix(name, executorPrefix)
		case strings.HasPrefix(name, taskPrefix):
			kind, into, name = "task", tasks, strings.TrimPrefix(name, taskPrefix)
		default:
			continue
		}
		path := filepath.Join(modules, e.Name())
		st, err := os.Stat(path)
		switch {
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("plugin %s: %v", path, err))
			continue
		case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
			warnings = append(warnings, fmt.Sprintf("plugin %s ignored: not an executable file", path))
			continue
		case !validPluginName(name):
			warnings = append(warnings, fmt.Sprintf("plugin %s ignored: %q is not a plugin name (a-z 0-9 _ -)", path, name))
			continue
		}
		into[name] = pluginRef{Kind: kind, Name: name, Path: path}
	}
	return executors, tasks, warnings
}

func validPluginName(name string) bool {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return name != ""
}

// pluginConfig is what a plugin receives: its own section, plus the
// server's [runner] concurrency unless the section sets one.
func pluginConfig(cfg *config.Config, name string) map[string]string {
	out := map[string]string{"concurrency": strconv.Itoa(cfg.Runner.Concurrency)}
	for k, v := range cfg.Sections[name] {
		out[k] = v
	}
	return out
}

// plugins are the plugin processes a server runs.
type plugins struct {
	executor *executor.Client
	tasks    map[string]exe.Task // by task type
	closers  []io.Closer
}

// startPlugins starts the configured executor and every task plugin, and
// configures them: a plugin that cannot start or refuses its section stops
// the server here.
func startPlugins(ctx context.Context, cfg *config.Config, log hclog.Logger) (*plugins, error) {
	executors, tasks, warnings := discover(cfg.Runner.Modules)
	for _, w := range warnings {
		log.Warn(w)
	}
	for section := range cfg.Sections {
		_, isExec := executors[section]
		_, isTask := tasks[section]
		if !config.ServerSections[section] && !isExec && !isTask {
			log.Warn(fmt.Sprintf("%s: section [%s] ignored: no plugin of that name", cfg.Path, section))
		}
	}
	ref, ok := executors[cfg.Runner.Executor]
	if !ok {
		return nil, fmt.Errorf("[runner] executor: no executor plugin %q (built-in: %s; modules: %s)",
			cfg.Runner.Executor, strings.Join(names(builtinExecutors), ", "), cfg.Runner.Modules)
	}
	p := &plugins{tasks: map[string]exe.Task{}}
	x, err := executor.Start(ctx, executor.Options{Name: ref.Name, Path: ref.Path, Args: ref.Args,
		Config: pluginConfig(cfg, ref.Name), Logger: log.Named("plugin")})
	if err != nil {
		return nil, err
	}
	p.executor = x
	p.closers = append(p.closers, x)
	for _, name := range sortedKeys(tasks) {
		ref := tasks[name]
		t, err := task.Start(ctx, task.Options{Name: ref.Name, Path: ref.Path, Args: ref.Args,
			Config: pluginConfig(cfg, ref.Name), Logger: log.Named("plugin")})
		if err != nil {
			p.Close()
			return nil, err
		}
		p.closers = append(p.closers, t)
		info, err := t.Info(ctx)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("task plugin %s: %w", name, err)
		}
		if prev, dup := p.tasks[info.Type]; dup && prev != nil {
			p.Close()
			return nil, fmt.Errorf("task plugin %s: task type %q is already served by another plugin", name, info.Type)
		}
		p.tasks[info.Type] = t
	}
	return p, nil
}

// Close kills every plugin process.
func (p *plugins) Close() {
	for _, c := range p.closers {
		_ = c.Close()
	}
}

// listPlugins prints what discover found, for exed --list-plugins.
func listPlugins(cfg *config.Config, stdout io.Writer) {
	executors, tasks, warnings := discover(cfg.Runner.Modules)
	fmt.Fprintf(stdout, "modules directory: %s\n", cfg.Runner.Modules)
	for _, kind := range []struct {
		name string
		refs map[string]pluginRef
	}{{"executor", executors}, {"task", tasks}} {
		for _, name := range sortedKeys(kind.refs) {
			ref := kind.refs[name]
			mark := ""
			if kind.name == "executor" && name == cfg.Runner.Executor {
				mark = " (selected)"
			}
			fmt.Fprintf(stdout, "%-8s  %-16s  %s%s\n", kind.name, name, ref.source(), mark)
		}
	}
	for _, w := range warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
}

// servePlugin is `exed plugin KIND NAME`: the server starts it to run a
// built-in plugin in a process of its own.
func servePlugin(args []string, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: exed plugin executor|task NAME (started by exed itself)")
		return exitUsage
	}
	kind, name := args[0], args[1]
	switch kind {
	case "executor":
		if mk, ok := builtinExecutors[name]; ok {
			executor.Serve(mk())
			return 0
		}
	case "task":
		if mk, ok := builtinTasks[name]; ok {
			task.Serve(mk())
			return 0
		}
	}
	fmt.Fprintf(stderr, "exed: no built-in %s plugin %q\n", kind, name)
	return exitUsage
}

// sshnativePlugin is the built-in sshnative executor as a plugin: it is
// built from the [sshnative] section when the server configures it.
type sshnativePlugin struct {
	exe.Executor
}

// Configure implements executor.Configurer.
func (p *sshnativePlugin) Configure(_ context.Context, values map[string]string) error {
	sn, concurrency, err := config.SSHNativeFrom(values)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	// The server parses these JSON lines into its own log.
	log := hclog.New(&hclog.LoggerOptions{Name: "sshnative", Output: os.Stderr, JSONFormat: true})
	var inv *inventory.Inventory
	if sn.Inventory != "" {
		if inv, err = inventory.Load(inventory.ParseSources(sn.Inventory)...); err != nil {
			return exe.Errorf(exe.ErrInvalid, "[sshnative] inventory: %v", err)
		}
		for _, w := range inv.Warnings() {
			log.Warn("inventory: " + w)
		}
	}
	x, err := sshnative.New(sshnative.Config{
		Inventory: inv,
		Roles:     sn.Roles,
		SSH: sshnative.SSHOptions{
			User: sn.RemoteUser, KeyFiles: sn.PrivateKeyFiles, KnownHosts: sn.KnownHosts,
			InsecureIgnoreHostKey: !sn.HostKeyChecking, NoAgent: !sn.UseAgent,
			ConnectTimeout: sn.ConnectTimeout, KeepAlive: sn.KeepAlive, IdleTimeout: sn.IdleTimeout,
		},
		Concurrency:    concurrency,
		OutputCap:      sn.OutputCap,
		CommandTimeout: sn.CommandTimeout,
		Logger:         log,
	})
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "[sshnative]: %v", err)
	}
	p.Executor = x
	return nil
}

// Health implements exe.HealthChecker.
func (p *sshnativePlugin) Health(ctx context.Context) error {
	if p.Executor == nil {
		return exe.Errorf(exe.ErrUnavailable, "sshnative: not configured")
	}
	if h, ok := p.Executor.(exe.HealthChecker); ok {
		return h.Health(ctx)
	}
	return nil
}

func names[T any](m map[string]T) []string { return sortedKeys(m) }

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
