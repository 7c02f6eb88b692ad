package exe_test

import (
	"context"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refusing refuses every request it is asked about.
type refusing struct{ exe.Executor }

func (refusing) ValidateRequest(context.Context, exe.Request) error {
	return exe.Errorf(exe.ErrInvalid, "refused")
}

// scopedRefusing is refusing with a ValidationScope: executes only.
type scopedRefusing struct{ refusing }

func (scopedRefusing) Validates(op exe.Operate) bool { return op == exe.OpExecute }

// The Engine asks a RequestValidator only about the operations its
// ValidationScope names, and about everything without one.
func TestValidationScope(t *testing.T) {
	ping := exe.Request{Operate: exe.OpPing, Targets: []string{"a"}}
	exec := exe.Request{Operate: exe.OpExecute, Targets: []string{"a"}, Execute: exe.ExecuteArgs{Cmd: "true"}}
	for name, tc := range map[string]struct {
		x      exe.Executor
		pingOK bool
	}{
		"scoped":   {scopedRefusing{refusing{&plugintest.Executor{}}}, true},
		"unscoped": {refusing{&plugintest.Executor{}}, false},
	} {
		t.Run(name, func(t *testing.T) {
			eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: tc.x, SyncTimeout: 5 * time.Second})
			require.NoError(t, err)
			t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
			ctx := context.Background()
			_, err = eng.Submit(ctx, ping)
			if tc.pingOK {
				assert.NoError(t, err, "a ping is not asked about")
			} else {
				assert.ErrorIs(t, err, exe.ErrInvalid)
			}
			_, err = eng.Submit(ctx, exec)
			assert.ErrorIs(t, err, exe.ErrInvalid)
			_, err = eng.RunSync(ctx, exec)
			assert.ErrorIs(t, err, exe.ErrInvalid)
		})
	}
}
