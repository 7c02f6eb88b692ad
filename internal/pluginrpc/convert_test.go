package pluginrpc

import (
	"fmt"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Every event a plugin emits, a task's own included (a task's events reach
// the wire without exe.Perform), marshals whatever bytes it carries.
func TestEventWithAnyBytesCrossesTheWire(t *testing.T) {
	raw := "caf\xe9 \xff"
	text := "caf\uFFFD \uFFFD"
	pb, err := eventToPB(exe.Event{Host: "h" + raw, Status: exe.HostChanged, Name: raw, Msg: raw,
		Exec: &exe.ExecResult{RTC: 2, Stdout: raw, Stderr: raw}, Facts: map[string]any{raw: raw}, Extra: map[string]any{"x": raw}, Truncated: true})
	require.NoError(t, err)
	b, err := proto.Marshal(pb)
	require.NoError(t, err, "proto3 strings must be UTF-8")
	var back pluginpb.Event
	require.NoError(t, proto.Unmarshal(b, &back))
	ev, err := eventFromPB(&back)
	require.NoError(t, err)
	assert.Equal(t, exe.Event{Host: "h" + text, Status: exe.HostChanged, Name: text, Msg: text,
		Exec: &exe.ExecResult{RTC: 2, Stdout: text, Stderr: text}, Facts: map[string]any{text: text}, Extra: map[string]any{"x": text}, Truncated: true}, ev)
}

// A broken connection's gRPC text names sockets: clients see a fixed text.
func TestTransportErrorHidesItsText(t *testing.T) {
	err := fmt.Errorf("call: %w", &TransportError{Code: codes.Unavailable, Msg: "connection error: desc = \"transport: dial unix /tmp/plugin1234: connect: no such file\""})
	assert.Equal(t, "plugin connection lost", exe.PublicMessage(err))
	assert.ErrorIs(t, err, exe.ErrUnavailable)
	assert.Contains(t, err.Error(), "/tmp/plugin1234", "the log keeps the cause")
}
