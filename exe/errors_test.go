package exe_test

import (
	"errors"
	"fmt"
	"testing"

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
