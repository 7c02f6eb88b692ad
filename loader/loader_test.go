package loader_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/loader"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain serves the built-ins when the test binary is started as a
// plugin, as a program that has built-ins does first thing in main.
func TestMain(m *testing.M) {
	loader.Standard.Serve(os.Args[1:])
	os.Exit(m.Run())
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
