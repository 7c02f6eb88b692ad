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
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"
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

// A host whose connection settings change with the inventory is reached
// as the new inventory says from the next command on: its pooled
// connection, made for the old settings, is not reused.
func TestSetInventoryReconnectsAChangedHost(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"ListenAddress 127.0.0.2"}})
	kh, err := os.OpenFile(s.KnownHosts, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintln(kh, knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("127.0.0.2:%d", s.Port))}, s.HostKey))
	require.NoError(t, err)
	require.NoError(t, kh.Close())
	parse := func(addr string) *inventory.Inventory {
		inv, err := inventory.Parse(strings.NewReader(fmt.Sprintf("h ansible_host=%s ansible_port=%d\n", addr, s.Port)), "hosts.ini")
		require.NoError(t, err)
		return inv
	}
	cfg := sshnative.Config{Inventory: parse("127.0.0.1")}
	cfg.SSH.User = s.User
	cfg.SSH.KeyFiles = []string{s.ClientKey}
	cfg.SSH.KnownHosts = []string{s.KnownHosts}
	cfg.SSH.NoAgent = true
	x, err := sshnative.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	// sshd sets SSH_CONNECTION to "client port server port".
	serverAddr := func() string {
		t.Helper()
		ev := collect(t, func(emit exe.Emit) error {
			return x.Execute(context.Background(), []string{"h"}, exe.ExecuteArgs{Cmd: "echo $SSH_CONNECTION"}, emit)
		})["h"]
		require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
		f := strings.Fields(ev.Exec.Stdout)
		require.Len(t, f, 4, ev.Exec.Stdout)
		return f[2]
	}
	assert.Equal(t, "127.0.0.1", serverAddr())
	x.SetInventory(parse("127.0.0.2"))
	assert.Equal(t, "127.0.0.2", serverAddr(), "the host's new address, not the pooled connection to its old one")
}
