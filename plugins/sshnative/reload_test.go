package sshnative_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SetInventory serves the operations that start after it; one under way
// finishes on the hosts it started with, and a host the new inventory
// dropped is UNREACHABLE from then on.
func TestSetInventory(t *testing.T) {
	parse := func(text string) *inventory.Inventory {
		inv, err := inventory.Parse(strings.NewReader(text), "hosts.ini")
		require.NoError(t, err)
		return inv
	}
	x, err := sshnative.New(sshnative.Config{Inventory: parse("old ansible_connection=local\n")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	events := make(chan exe.Event, 1)
	returned := make(chan error, 1)
	go func() {
		returned <- x.Execute(context.Background(), []string{"old"}, exe.ExecuteArgs{
			Cmd: fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done; echo done", started, release)},
			func(ev exe.Event) { events <- ev })
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, 10*time.Second, 10*time.Millisecond)

	warnings := x.SetInventory(parse("new ansible_connection=local ansible_password=secret\n"))
	assert.Equal(t, []string{"ansible_password is not honoured: sshnative logs in with keys and ssh-agent only (host new)"}, warnings)
	hosts, err := x.Match(context.Background(), "all")
	require.NoError(t, err)
	assert.Equal(t, []string{"new"}, hosts)
	assert.Contains(t, x.Warnings(), warnings[0])

	require.NoError(t, os.WriteFile(release, nil, 0o600))
	require.NoError(t, <-returned)
	ev := <-events
	assert.Equal(t, exe.HostChanged, ev.Status, "the operation under way finished on its host: %v", ev.Msg)
	assert.Equal(t, "done\n", ev.Exec.Stdout)

	var after exe.Event
	require.NoError(t, x.Ping(context.Background(), []string{"old"}, func(ev exe.Event) { after = ev }))
	assert.Equal(t, exe.Event{Host: "old", Status: exe.HostUnreachable, Msg: "host is not in the inventory"}, after)
}
