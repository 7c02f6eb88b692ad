package main

import (
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/executortest"
	"github.com/stretchr/testify/require"
)

// TestConformance runs exed's executor suite on this plugin, through the
// plugin protocol as exed calls it: a copy of this example starts with a
// passing suite.
func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Options{Hosts: []string{"web1", "web2"}, New: func(t *testing.T) exe.Executor {
		l := &localsh{Only: exe.Only{exe.OpPing, exe.OpFacter, exe.OpExecute}}
		x := executor.TestClient(t, l, map[string]string{"hosts": "web1, web2"})
		require.False(t, exe.Supports(x, exe.OpDeploy), "what the plugin declared crossed the protocol")
		return x
	}})
}
