package exe_test

import (
	"context"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/rollingrestart"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// NewEngine refuses a Config whose parts are missing, nil behind an
// interface, or do not fit together, naming the part, instead of an
// Engine that panics on its first request or answers for a task it
// cannot run.
func TestNewEngineRefusesWhatWouldNotWork(t *testing.T) {
	store := memory.New(memory.Options{})
	x := &plugintest.Executor{}
	var nilExecutor *plugintest.Executor
	var nilStore *memory.Store
	var nilLocal *exe.LocalDispatcher
	for _, tc := range []struct {
		name string
		cfg  exe.Config
		want string
	}{
		{"nothing", exe.Config{}, "exe: Config needs a Store and an Executor"},
		{"no executor", exe.Config{Store: store}, "exe: Config needs an Executor"},
		{"no store", exe.Config{Executor: x}, "exe: Config needs a Store (or a Dispatcher that brings one)"},
		{"nil executor", exe.Config{Store: store, Executor: nilExecutor}, "exe: Config.Executor is a nil *plugintest.Executor"},
		{"nil store", exe.Config{Store: nilStore, Executor: x}, "exe: Config.Store is a nil *memory.Store"},
		{"nil dispatcher", exe.Config{Store: store, Executor: x, Dispatcher: nilLocal}, "exe: Config.Dispatcher is a nil *exe.LocalDispatcher"},
		{"nil task", exe.Config{Store: store, Executor: x, Tasks: map[string]exe.Task{"rollingrestart": nil}},
			`exe: Config.Tasks["rollingrestart"] is nil`},
		{"task under another type", exe.Config{Store: store, Executor: x, Tasks: map[string]exe.Task{"rr": rollingrestart.Task{}}},
			`exe: Config.Tasks["rr"] is a task of type "rollingrestart": key each task by its type`},
		{"negative sync timeout", exe.Config{Store: store, Executor: x, SyncTimeout: -time.Second},
			"exe: Config.SyncTimeout is negative (zero means the default)"},
		{"negative workers", exe.Config{Store: store, Executor: x, Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: -1})},
			"exe: LocalOptions.Workers is negative (zero means the default)"},
	} {
		eng, err := exe.NewEngine(tc.cfg)
		assert.EqualError(t, err, tc.want, tc.name)
		assert.Nil(t, eng, tc.name)
	}

	// Keyed by its type, the task is advertised and runs under it.
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, Tasks: map[string]exe.Task{"rollingrestart": rollingrestart.Task{}}})
	require.NoError(t, err)
	defer eng.Shutdown(context.Background())
	infos, err := eng.TaskInfos(context.Background())
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, "rollingrestart", infos[0].Type)
}

// An Engine that NewEngine did not make (the zero value) says so rather
// than panic.
func TestZeroEngineSaysSo(t *testing.T) {
	var eng exe.Engine
	ctx := context.Background()
	assert.EqualError(t, eng.Shutdown(ctx), "exe: the Engine was not made by NewEngine")
	_, err := eng.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a"}})
	assert.EqualError(t, err, "exe: the Engine was not made by NewEngine")
	_, err = eng.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a"}})
	assert.EqualError(t, err, "exe: the Engine was not made by NewEngine")
	_, err = eng.Job(ctx, "x", false)
	assert.EqualError(t, err, "exe: the Engine was not made by NewEngine")
	assert.EqualError(t, eng.Health(ctx), "exe: the Engine was not made by NewEngine")
}
