package loader_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/loader"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forgetServe, in the environment, makes the test binary started as a
// plugin behave as a program whose main forgot Builtins.Serve: it goes on
// to load plugins, and exits with what Load said.
const forgetServe = "LOADER_TEST_FORGET_SERVE"

// TestMain serves the built-ins when the test binary is started as a
// plugin, as a program that has built-ins does first thing in main.
func TestMain(m *testing.M) {
	if os.Getenv(forgetServe) != "" && len(os.Args) > 1 && os.Args[1] == loader.ServeArg {
		set, err := loader.Load(context.Background(), loader.Options{Builtins: loader.Standard, Tasks: []string{"rollingrestart"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		set.Close()
		os.Exit(0)
	}
	loader.Standard.Serve(os.Args[1:])
	os.Exit(m.Run())
}

// A program that forgot Builtins.Serve in main: the process started to
// serve the built-in reaches Load, which fails at once saying what to do,
// instead of starting the built-in again (and again); the Load that
// started it fails naming the same fix.
func TestLoadInAPluginProcessSaysServeFirst(t *testing.T) {
	t.Setenv(forgetServe, "1")
	logged := &syncBuilder{}
	log := hclog.New(&hclog.LoggerOptions{Output: logged, Level: hclog.Debug})
	_, err := loader.Load(context.Background(), loader.Options{Builtins: loader.Standard, Tasks: []string{"rollingrestart"}, Logger: log})
	require.ErrorIs(t, err, exe.ErrUnavailable)
	assert.ErrorContains(t, err, "task plugin rollingrestart could not be started")
	assert.ErrorContains(t, err, "plugin task rollingrestart\": call Builtins.Serve(os.Args[1:]), or loader.Standard.Serve for exed's own plugins, first thing in main)")
	// The plugin process's stderr reaches the log as it is read.
	assert.Eventually(t, func() bool {
		return strings.Contains(logged.String(), "loader: this process was started as a plugin, the built-in task plugin rollingrestart")
	}, 10*time.Second, 10*time.Millisecond, "the plugin process's own Load refused: %s", logged)
	assert.NotContains(t, err.Error(), "timeout", "no process started another")

	// In this very process, as if it had been started as a plugin.
	t.Setenv("EXE_PLUGIN", "task")
	_, err = loader.Load(context.Background(), loader.Options{Builtins: loader.Standard})
	assert.ErrorIs(t, err, loader.ErrStartedAsPlugin)
}

// syncBuilder is a strings.Builder safe for the log lines of several
// goroutines.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode))
	}
	write("exe-executor-custom", 0o755)
	write("exe-task-sshnative", 0o755) // a task may share an executor's name
	write("exe-executor-ansible", 0o755)
	write("exe-executor-notexec", 0o644)
	write("exe-executor-Bad.Name", 0o755)
	write("README", 0o644)
	cat, warnings := loader.Discover(dir, loader.Standard)
	assert.ElementsMatch(t, []string{"custom", "ansible", "sshnative"}, keys(cat.Executors))
	assert.ElementsMatch(t, []string{"rollingrestart", "sshnative"}, keys(cat.Tasks))
	assert.False(t, cat.Executors["ansible"].Builtin, "a module overrides a built-in")
	assert.Equal(t, filepath.Join(dir, "exe-executor-ansible"), cat.Executors["ansible"].Path)
	assert.True(t, cat.Executors["sshnative"].Builtin)
	assert.Equal(t, []string{"plugin", "executor", "sshnative"}, cat.Executors["sshnative"].Args)
	assert.Len(t, warnings, 2)
	assert.Contains(t, warnings[0]+warnings[1], "not an executable file")
	assert.Contains(t, warnings[0]+warnings[1], "is not a plugin name")
	assert.True(t, cat.Has("custom"))
	assert.False(t, cat.Has("nosuch"))

	cat, warnings = loader.Discover(filepath.Join(dir, "missing"), loader.Builtins{})
	assert.Empty(t, cat.Executors)
	assert.Empty(t, warnings, "a missing modules directory is no error")
}

// TestLoadStartsBuiltinsAsProcesses starts the built-in sshnative executor
// and rollingrestart task as plugin processes of this test binary, and runs
// an operation through them.
func TestLoadStartsBuiltinsAsProcesses(t *testing.T) {
	ctx := context.Background()
	set, err := loader.Load(ctx, loader.Options{Builtins: loader.Standard, Executor: "sshnative", Forks: 2,
		Sections: map[string]map[string]string{"sshnative": {"output_cap": "64"}}})
	require.NoError(t, err)
	defer set.Close()
	require.NotNil(t, set.Executor)
	assert.NotZero(t, set.Executor.PID())
	assert.NotEqual(t, os.Getpid(), set.Executor.PID(), "a process of its own")
	require.Contains(t, set.Tasks, "rollingrestart")
	var got []exe.Event
	err = set.Executor.Execute(ctx, []string{"localhost"}, exe.ExecuteArgs{Cmd: "printf '%0100d' 0"}, func(ev exe.Event) { got = append(got, ev) })
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Exec)
	assert.Len(t, got[0].Exec.Stdout, 64, "the section reached the plugin")
	assert.True(t, got[0].Truncated)
	require.NoError(t, set.Close())

	_, err = loader.Load(ctx, loader.Options{Builtins: loader.Standard, Executor: "nosuch"})
	assert.ErrorIs(t, err, loader.ErrNoPlugin)
	assert.Contains(t, err.Error(), `no executor plugin "nosuch" (found: ansible, sshnative;`)
	_, err = loader.Load(ctx, loader.Options{Builtins: loader.Standard, Executor: "sshnative",
		Sections: map[string]map[string]string{"sshnative": {"output_cap": "none"}}})
	assert.ErrorContains(t, err, `[sshnative] output_cap: "none" is not a whole number`)
}

// An embedder with its own executor loads only the task plugins.
func TestLoadTasksOnly(t *testing.T) {
	set, err := loader.Load(context.Background(), loader.Options{Builtins: loader.Standard, Tasks: []string{"rollingrestart"}})
	require.NoError(t, err)
	defer set.Close()
	assert.Nil(t, set.Executor)
	assert.Len(t, set.Tasks, 1)
	// Its nil Executor is not one to run requests with.
	_, err = exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: set.Executor, Tasks: set.Tasks})
	assert.EqualError(t, err, "exe: Config.Executor is a nil *executor.Client")
}

// Started as a plugin it does not have, the binary says so and exits 2
// (the test binary serves the built-ins as a program does, in TestMain);
// other arguments are the program's own.
func TestServeRefusesWhatItDoesNotHave(t *testing.T) {
	var stderr strings.Builder
	cmd := exec.Command(os.Args[0], "plugin", "executor", "nosuch")
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 2, exit.ExitCode())
	assert.Contains(t, stderr.String(), `no such built-in plugin: executor "nosuch"`)
	loader.Standard.Serve([]string{"-c", "exed.conf"}) // returns: not a plugin request
}

func keys[T any](m map[string]T) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
