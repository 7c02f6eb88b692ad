package exe_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
)

// An error's public text never carries its cause, however it is wrapped;
// the log's text (Error) does.
func TestPublicMessageHidesCauses(t *testing.T) {
	cause := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	err := fmt.Errorf("finish job 42: %w", exe.WithCause(exe.ErrUnavailable, cause, "job store: redis is not reachable"))
	assert.ErrorIs(t, err, exe.ErrUnavailable)
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, "job store: redis is not reachable", exe.PublicMessage(err))
	assert.Contains(t, err.Error(), "127.0.0.1:6379", "the log gets the details")

	assert.Equal(t, "internal error", exe.PublicMessage(cause), "unknown errors are never shown")
	assert.Equal(t, "tasktype: nope", exe.PublicMessage(exe.Errorf(exe.ErrInvalid, "tasktype: nope")))
	assert.Equal(t, "dispatcher: no worker", exe.PublicMessage(exe.Errorf(exe.ErrDegraded, "dispatcher: no worker")))
}

// A host held past its job's end says for how long, in whole seconds
// rounded up (never "0s", which would read as free), with and without
// the job's id.
func TestConflictErrorHeld(t *testing.T) {
	running := &exe.ConflictError{Host: "web1", JID: "j1"}
	assert.Equal(t, "operate conflict: host web1 is locked by running job j1", running.Error())
	assert.Equal(t, "operate conflict: host web1 is locked by a running job of another user", exe.PublicMessage(running.Anonymous()))
	held := &exe.ConflictError{Host: "web1", JID: "j1", Held: 200 * time.Millisecond}
	assert.Equal(t, "operate conflict: host web1 is locked for 1s more by job j1, cancelled without its worker confirming the stop: the worker may run its command until then", held.Error())
	assert.ErrorIs(t, held, exe.ErrConflict)
	anon := held.Anonymous()
	assert.ErrorIs(t, anon, exe.ErrConflict)
	assert.NotContains(t, exe.PublicMessage(anon), "j1")
	assert.Contains(t, exe.PublicMessage(anon), "locked for 1s more by a job of another user")
	held.Held = 12*time.Second + time.Millisecond
	assert.Contains(t, held.Error(), "locked for 13s more")
}
