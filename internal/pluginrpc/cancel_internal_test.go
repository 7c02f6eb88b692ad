package pluginrpc

import (
	"context"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/stretchr/testify/assert"
)

// A Cancel can reach the plugin before the operation it names: gRPC does
// not order a stream's start against a later call. The operation must then
// start cancelled, with the cancel's cause, rather than run to its end.
func TestCancelThatOvertakesItsOperation(t *testing.T) {
	var r ops
	r.cancel(&pluginpb.CancelRequest{Id: "op1", Cause: exe.ErrCancelled.Error()})
	ctx, _, done := r.start(context.Background(), "op1")
	defer done()
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	assert.ErrorIs(t, context.Cause(ctx), exe.ErrCancelled)

	// Another operation is not touched, and the early cancel is used once.
	other, _, done2 := r.start(context.Background(), "op2")
	defer done2()
	assert.NoError(t, other.Err())
	again, _, done3 := r.start(context.Background(), "op1")
	defer done3()
	assert.NoError(t, again.Err())
}
