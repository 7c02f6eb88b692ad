// Command testexec serves plugintest.Executor as an executor plugin, for
// exed's own tests. EXE_TESTPLUGIN_PROTOCOL=N makes it speak protocol
// version N, for the version-mismatch test.
package main

import (
	"os"
	"strconv"

	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/internal/plugintest"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

func main() {
	// A plugin's hclog output goes to the stderr it started with, in
	// JSON, which the server parses into its own log.
	impl := &plugintest.Executor{Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true})}
	if v := os.Getenv("EXE_TESTPLUGIN_PROTOCOL"); v != "" {
		n, _ := strconv.Atoi(v)
		hs := executor.Handshake
		hs.ProtocolVersion = uint(n)
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: hs, GRPCServer: plugin.DefaultGRPCServer,
			Plugins: plugin.PluginSet{"executor": &executor.GRPCPlugin{Impl: impl}}})
		return
	}
	executor.Serve(impl)
}
