package executor_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/executor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A reload whose call ends before the plugin has loaded the new inventory
// (exed's reload timeout passes while an inventory script still runs)
// leaves the plugin free to replace its inventory later, unseen: the
// Engine keeps no answer until the plugin is configured again, so it
// answers from the inventory the plugin has, before and after the swap.
func TestReconfigureCutShortKeepsNoAnswers(t *testing.T) {
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	require.NoError(t, syscall.Mkfifo(started, 0o600))
	require.NoError(t, syscall.Mkfifo(release, 0o600))
	block := filepath.Join(dir, "block")
	script := filepath.Join(dir, "inventory.sh")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
if [ "$1" != "--list" ]; then echo '{}'; exit 0; fi
if [ -e %[1]s ]; then
	echo started > %[2]s
	cat %[3]s > /dev/null
	echo '{"all":{"hosts":["new"]},"_meta":{"hostvars":{}}}'
else
	echo '{"all":{"hosts":["old"]},"_meta":{"hostvars":{}}}'
fi
`, block, started, release)), 0o755))
	c, _ := start(t, executor.Options{Name: "sshnative", Path: bins["exe-executor-sshnative"],
		Config: map[string]string{"inventory": script}})
	eng, _ := engineOn(t, c)
	ctx := context.Background()
	hosts, err := eng.Match(ctx, "all")
	require.NoError(t, err)
	require.Equal(t, []string{"old"}, hosts)

	require.NoError(t, os.WriteFile(block, nil, 0o600))
	rctx, cancel := context.WithCancel(ctx)
	reloaded := make(chan error, 1)
	go func() { reloaded <- c.Reconfigure(rctx) }()
	f, err := os.Open(started) // the plugin runs the script for the new inventory
	require.NoError(t, err)
	_, _ = io.ReadAll(f)
	f.Close()
	cancel() // as the reload timeout would
	require.Error(t, <-reloaded)
	_, ok := c.MatchVersion()
	assert.False(t, ok, "no answer is kept while the plugin may still be loading")
	hosts, err = eng.Match(ctx, "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"old"}, hosts, "the plugin still serves the old inventory")

	w, err := os.OpenFile(release, os.O_WRONLY, 0)
	require.NoError(t, err)
	w.Close()
	require.Eventually(t, func() bool {
		h, err := c.Match(ctx, "all")
		return err == nil && slices.Equal(h, []string{"new"})
	}, 30*time.Second, 10*time.Millisecond, "the plugin loads the new inventory")

	hosts, err = eng.Match(ctx, "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"new"}, hosts, "the Engine answers from the inventory the plugin loaded since")
}
