// Package loader finds, starts and configures exed's plugins: executors and
// tasks that run as processes of their own over go-plugin (see the executor
// and task packages), so that one crashing plugin never takes the server
// down with it.
//
// Plugins come from two places, as go-plugin's Discover and Nomad's plugin
// loader have them:
//
//   - built-ins: plugins compiled into the running binary, which serves
//     them itself when started as "BINARY plugin KIND NAME" (a program that
//     has built-ins calls Builtins.Serve first thing in main, and exits
//     there when it was started as a plugin);
//   - modules: executable files named exe-executor-NAME and exe-task-NAME
//     in a modules directory. A module overrides a built-in of the same
//     kind and name.
//
// Each plugin gets its own section of exed.conf (the section named after
// it) and the server's concurrency, after every start; a plugin that dies
// is started again at once. The executor also gets a state directory of
// its own, where the sshnative executor keeps its journal of running
// commands, so that those a dead plugin left running are ended.
//
// An embedder that has its own in-process executor loads task plugins only,
// and stops them once its Engine has stopped (examples/embed):
//
//	func main() {
//		loader.Standard.Serve(os.Args[1:]) // exits when started as a plugin
//		plugins, err := loader.Load(ctx, loader.Options{Builtins: loader.Standard, Tasks: []string{"rollingrestart"}})
//		...
//		engine, err := exe.NewEngine(exe.Config{Executor: myExecutor, Tasks: plugins.Tasks, ...})
//		...
//		engine.Shutdown(ctx) // then
//		plugins.Shutdown(ctx)
//	}
//
// (transport/http's ListenAndServe does the stopping.) A plugin process
// also dies with the process that started it, so none outlives a crash.
package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/pluginhost"
	"github.com/0ops/exed/plugins/ansible"
	"github.com/0ops/exed/plugins/rollingrestart"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/0ops/exed/task"
	"github.com/hashicorp/go-hclog"
)

// File name prefixes of plugin binaries in a modules directory.
const (
	ExecutorPrefix = "exe-executor-"
	TaskPrefix     = "exe-task-"
)

// Kinds of plugin.
const (
	KindExecutor = "executor"
	KindTask     = "task"
)

// Builtins are the plugins a binary serves itself, by name.
type Builtins struct {
	Executors map[string]func() exe.Executor
	Tasks     map[string]func() exe.Task
}

// Standard are exed's own plugins: the sshnative and ansible executors and
// the rollingrestart task.
var Standard = Builtins{
	Executors: map[string]func() exe.Executor{
		"sshnative": func() exe.Executor { return &sshnative.Plugin{} },
		"ansible":   func() exe.Executor { return &ansible.Plugin{} },
	},
	Tasks: map[string]func() exe.Task{
		"rollingrestart": func() exe.Task { return rollingrestart.Task{} },
	},
}

// ServeArg is the first argument with which a binary is started to serve
// one of its built-ins: "BINARY plugin KIND NAME".
const ServeArg = "plugin"

// ErrNoBuiltin is what Serve says of a built-in the binary does not have.
var ErrNoBuiltin = errors.New("no such built-in plugin")

// ErrNoPlugin is matched (errors.Is) by Load's *NotFoundError.
var ErrNoPlugin = errors.New("no such plugin")

// ErrStartedAsPlugin is Load's error in a process that was started as a
// plugin: a program whose main reaches Load before Builtins.Serve, so
// that each built-in it starts would run main again, and load plugins
// again, without end.
var ErrStartedAsPlugin = errors.New("this process was started as a plugin")

// serveFirst is the fix that Load's errors name when a built-in did not
// start because its binary's main does not serve it.
const serveFirst = "call Builtins.Serve(os.Args[1:]), or loader.Standard.Serve for exed's own plugins, first thing in main"

// startedAsPlugin is ErrStartedAsPlugin, saying which plugin and what to
// do, when go-plugin's cookie is in this process's environment; nil
// otherwise.
func startedAsPlugin() error {
	kind := os.Getenv(pluginhost.CookieKey)
	if kind == "" {
		return nil
	}
	if args := os.Args[1:]; len(args) == 3 && args[0] == ServeArg {
		return fmt.Errorf("loader: %w, the built-in %s plugin %s (%q), yet its main reached loader.Load: %s; it serves the plugin and exits",
			ErrStartedAsPlugin, args[1], args[2], strings.Join(os.Args, " "), serveFirst)
	}
	return fmt.Errorf("loader: %w (%s=%s is set): a plugin does not load plugins", ErrStartedAsPlugin, pluginhost.CookieKey, kind)
}

// NotFoundError is Load's error for a plugin that Options names but
// Discover did not find; it lists what was found.
type NotFoundError struct {
	Kind, Name string
	Found      []string
	Modules    string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no %s plugin %q (found: %s; modules: %s)", e.Kind, e.Name, strings.Join(e.Found, ", "), e.Modules)
}

// Is makes errors.Is(err, ErrNoPlugin) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNoPlugin }

// Serve serves the built-in plugin that args (the program's arguments
// without its name) ask for, "plugin KIND NAME", as the loader starts
// this binary to run one, and then exits the process: with status 0 once
// the host is done with the plugin, or with status 2 after saying on
// stderr that the binary has no such plugin, as flag.ExitOnError and
// go-plugin's own Serve do. When args do not start with ServeArg it
// returns at once, so a program that has built-ins calls it first thing
// in main:
//
//	func main() {
//		loader.Standard.Serve(os.Args[1:])
//		...
//	}
func (b Builtins) Serve(args []string) {
	served, err := b.serve(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(2)
	}
	if served {
		os.Exit(0)
	}
}

// serve serves the built-in args ask for and reports true once the host
// is done with it; false at once when args are not a plugin request.
func (b Builtins) serve(args []string) (served bool, err error) {
	if len(args) == 0 || args[0] != ServeArg {
		return false, nil
	}
	if len(args) != 3 {
		return false, fmt.Errorf("usage: %s executor|task NAME (started by the server itself)", ServeArg)
	}
	kind, name := args[1], args[2]
	switch kind {
	case KindExecutor:
		if mk, ok := b.Executors[name]; ok {
			executor.Serve(mk())
			return true, nil
		}
	case KindTask:
		if mk, ok := b.Tasks[name]; ok {
			task.Serve(mk())
			return true, nil
		}
	}
	return false, fmt.Errorf("%w: %s %q", ErrNoBuiltin, kind, name)
}

// Plugin is one plugin found by Discover.
type Plugin struct {
	Kind string // KindExecutor or KindTask
	Name string
	// Path and Args start it: the module binary, or this binary with
	// "plugin KIND NAME" for a built-in.
	Path    string
	Args    []string
	Builtin bool
}

// Source says where the plugin comes from, for listings.
func (p Plugin) Source() string {
	if p.Builtin {
		return "built-in (" + p.Path + " " + strings.Join(p.Args, " ") + ")"
	}
	return p.Path
}

// Catalog is what Discover found, by kind and name.
type Catalog struct {
	Executors map[string]Plugin
	Tasks     map[string]Plugin
}

// Has reports whether a plugin of either kind has name; a config section
// named after no plugin and no server section is a mistake worth a warning.
func (c Catalog) Has(name string) bool {
	_, x := c.Executors[name]
	_, t := c.Tasks[name]
	return x || t
}

// Discover lists the built-ins of b, overridden by the executable files
// named exe-executor-NAME and exe-task-NAME in modules ("" or a missing
// directory: none). Files that cannot be plugins (not executable, not a
// regular file, a NAME outside a-z 0-9 _ -) are left out with a warning.
func Discover(modules string, b Builtins) (Catalog, []string) {
	c := Catalog{Executors: map[string]Plugin{}, Tasks: map[string]Plugin{}}
	var warnings []string
	if len(b.Executors)+len(b.Tasks) > 0 {
		self, err := os.Executable()
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("built-in plugins unavailable: %v", err))
		} else {
			for name := range b.Executors {
				c.Executors[name] = Plugin{Kind: KindExecutor, Name: name, Path: self, Args: []string{ServeArg, KindExecutor, name}, Builtin: true}
			}
			for name := range b.Tasks {
				c.Tasks[name] = Plugin{Kind: KindTask, Name: name, Path: self, Args: []string{ServeArg, KindTask, name}, Builtin: true}
			}
		}
	}
	if modules == "" {
		return c, warnings
	}
	entries, err := os.ReadDir(modules)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			warnings = append(warnings, fmt.Sprintf("modules directory: %v", err))
		}
		return c, warnings
	}
	for _, e := range entries {
		kind, into, name := "", c.Executors, e.Name()
		switch {
		case strings.HasPrefix(name, ExecutorPrefix):
			kind, name = KindExecutor, strings.TrimPrefix(name, ExecutorPrefix)
		case strings.HasPrefix(name, TaskPrefix):
			kind, into, name = KindTask, c.Tasks, strings.TrimPrefix(name, TaskPrefix)
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
		case !ValidName(name):
			warnings = append(warnings, fmt.Sprintf("plugin %s ignored: %q is not a plugin name (a-z 0-9 _ -)", path, name))
			continue
		}
		into[name] = Plugin{Kind: kind, Name: name, Path: path}
	}
	return c, warnings
}

// ValidName reports whether name is a plugin name: a-z 0-9 _ -, not empty.
func ValidName(name string) bool {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return name != ""
}

// Options say which plugins Load starts.
type Options struct {
	// Modules is the directory of plugin binaries; "": built-ins only.
	Modules string
	// Builtins are the plugins this binary serves itself (Standard, or
	// none); the program must call Builtins.Serve in main.
	Builtins Builtins
	// Executor names the executor plugin to start; "": none (the caller
	// has an executor of its own).
	Executor string
	// Tasks names the task plugins to start; nil: every one found.
	Tasks []string
	// Sections are the config sections by plugin name: each plugin
	// receives its own.
	Sections map[string]map[string]string
	// Forks, how many hosts one operation works on at once, is sent to
	// every plugin as "concurrency" (the name plugins have always been
	// given it under) unless its section sets one; zero: not sent.
	Forks int
	// StateDir holds the executor plugin's state directory,
	// StateDir/executor-NAME (see executor.StateDir), which must be the
	// same for the server's next run. "": the executor gets none, and the
	// commands of a plugin that dies may go on running.
	StateDir string
	// Logger receives the plugins' own log lines and stderr, tagged with
	// their names, and Discover's warnings. Nil: discarded.
	Logger hclog.Logger
}

// Set is the plugins Load started. Close stops them.
type Set struct {
	// Catalog is everything Discover found, started or not.
	Catalog Catalog
	// Executor is the executor plugin, nil when Options.Executor was "".
	Executor *executor.Client
	// Tasks are the task plugins by the task type each serves.
	Tasks map[string]exe.Task

	procs []process // the executor first
}

// process is a plugin process: *executor.Client or *task.Client.
type process interface {
	Shutdown(context.Context) error
	Close() error
}

// Load discovers the plugins, then starts and configures the executor and
// the tasks: a plugin that cannot start, speaks another protocol version or
// refuses its section is an error here, and nothing is left running. Two
// task plugins serving one task type are an error too. A built-in that
// cannot start is said to need Builtins.Serve first in main.
//
// In a process that was started as a plugin (a program whose main calls
// Load before Builtins.Serve, started again to serve a built-in), Load
// starts nothing and returns ErrStartedAsPlugin at once, naming the fix:
// that process exits, and the Load that started it fails, instead of
// each process starting another.
func Load(ctx context.Context, opts Options) (*Set, error) {
	if err := startedAsPlugin(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cat, warnings := Discover(opts.Modules, opts.Builtins)
	for _, w := range warnings {
		log.Warn(w)
	}
	s := &Set{Catalog: cat, Tasks: map[string]exe.Task{}}
	config := func(name string) map[string]string {
		out := map[string]string{}
		if opts.Forks > 0 {
			out["concurrency"] = strconv.Itoa(opts.Forks)
		}
		for k, v := range opts.Sections[name] {
			out[k] = v
		}
		return out
	}
	if opts.Executor != "" {
		ref, ok := cat.Executors[opts.Executor]
		if !ok {
			return nil, &NotFoundError{KindExecutor, opts.Executor, sortedKeys(cat.Executors), opts.Modules}
		}
		var state string
		if opts.StateDir != "" {
			state = filepath.Join(opts.StateDir, KindExecutor+"-"+ref.Name)
		}
		x, err := executor.Start(ctx, executor.Options{Name: ref.Name, Path: ref.Path, Args: ref.Args,
			Config: config(ref.Name), StateDir: state, Logger: log.Named("plugin")})
		if err != nil {
			return nil, notServed(ref, err)
		}
		s.Executor = x
		s.procs = append(s.procs, x)
	}
	names := opts.Tasks
	if names == nil {
		names = sortedKeys(cat.Tasks)
	}
	for _, name := range names {
		ref, ok := cat.Tasks[name]
		if !ok {
			s.Close()
			return nil, &NotFoundError{KindTask, name, sortedKeys(cat.Tasks), opts.Modules}
		}
		t, err := task.Start(ctx, task.Options{Name: ref.Name, Path: ref.Path, Args: ref.Args,
			Config: config(ref.Name), Logger: log.Named("plugin")})
		if err != nil {
			s.Close()
			return nil, notServed(ref, err)
		}
		s.procs = append(s.procs, t)
		info, err := t.Info(ctx)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("task plugin %s: %w", name, err)
		}
		if _, dup := s.Tasks[info.Type]; dup {
			s.Close()
			return nil, fmt.Errorf("task plugin %s: task type %q is already served by another plugin", name, info.Type)
		}
		s.Tasks[info.Type] = t
	}
	return s, nil
}

// Reload sends the executor plugin its section again (executor.Client
// Reconfigure), so that it re-reads the files the section names: the
// sshnative plugin reloads its inventory. It returns the plugin's refusal
// when the files no longer load; the plugin then goes on with what it
// had. Without an executor plugin it does nothing.
func (s *Set) Reload(ctx context.Context) error {
	if s.Executor == nil {
		return nil
	}
	return s.Executor.Reconfigure(ctx)
}

// Shutdown stops the plugins once nothing uses them: the task plugins
// first (their runs drive the executor), then the executor, each given
// until ctx is done to end what it was doing (the executor: the commands
// of the operations that were cancelled) and exit, then killed. It is safe
// to call more than once, with Close, and on a nil Set.
func (s *Set) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		errs = append(errs, s.procs[i].Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Close kills every plugin process Load started. It is safe to call more
// than once, and on a nil Set.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, p := range s.procs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// notServed adds to the error of a built-in that could not be started
// (not one that refused its section) the likely cause: its binary's main
// does not serve it.
func notServed(ref Plugin, err error) error {
	if !ref.Builtin || !errors.Is(err, exe.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w (the built-in runs as %q: %s)", err, ref.Path+" "+strings.Join(ref.Args, " "), serveFirst)
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
