package executor

import (
	"context"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/pluginrpc"
	"github.com/hashicorp/go-plugin"
)

// TestClient serves impl over the plugin protocol on an in-process gRPC
// connection (go-plugin's TestPluginGRPCConn) and returns the host's side:
// every call, event and error crosses the same shims as with a plugin
// process, without building one. config is sent as the plugin's section, as
// Start does; Capabilities cross as they do after a start. The connection
// closes when the test ends. For tests, such as executortest's suite.
func TestClient(t testing.TB, impl exe.Executor, config map[string]string) exe.Executor {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, kind.Plugins(impl))
	t.Cleanup(func() {
		// The server first: the client's Close asks a live server to stop
		// itself, and that Stop would race with this one.
		server.Stop()
		client.Close()
	})
	raw, err := client.Dispense(kind.Name)
	if err != nil {
		t.Fatalf("executor.TestClient: %v", err)
	}
	x := raw.(*pluginrpc.ExecutorClient)
	ctx := context.Background()
	if err := x.Configure(ctx, config); err != nil {
		t.Fatalf("executor.TestClient: configure: %v", err)
	}
	ops, err := x.Operations(ctx)
	if err != nil {
		t.Fatalf("executor.TestClient: operations: %v", err)
	}
	return &testClient{ExecutorClient: x, ops: ops}
}

// testClient is the host side with the capabilities the plugin declared.
type testClient struct {
	*pluginrpc.ExecutorClient
	ops exe.Only
}

// Supports implements exe.Capabilities: what the plugin declared.
func (c *testClient) Supports(op exe.Operate) bool { return c.ops.Supports(op) }
