package prometheus_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	exeprom "github.com/0ops/exed/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sshnative executor on a real sshd: each connection it sets up is
// one dial, a failed one an error, and the pool holds one connection per
// host until the executor closes.
func TestSSHDialsAndPool(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	inv, err := inventory.Parse(strings.NewReader(fmt.Sprintf(
		"[up]\nh1 ansible_host=127.0.0.1 ansible_port=%d\nh2 ansible_host=127.0.0.1 ansible_port=%d\n[down]\nrefused ansible_host=127.0.0.1 ansible_port=%d\n",
		s.Port, s.Port, closed)), "hosts.ini")
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	x, err := sshnative.New(sshnative.Config{Inventory: inv, Observer: exeprom.NewSSH(reg),
		SSH: sshnative.SSHOptions{User: s.User, KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts},
			NoAgent: true, ConnectTimeout: 5 * time.Second}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })

	ctx := context.Background()
	statuses := map[string]exe.HostStatus{}
	var mu sync.Mutex
	run := func() {
		t.Helper()
		require.NoError(t, x.Execute(ctx, []string{"h1", "h2", "refused"}, exe.ExecuteArgs{Cmd: "true"}, func(ev exe.Event) {
			mu.Lock()
			statuses[ev.Host] = ev.Status
			mu.Unlock()
		}))
	}
	run()
	assert.Equal(t, map[string]exe.HostStatus{"h1": exe.HostChanged, "h2": exe.HostChanged, "refused": exe.HostUnreachable}, statuses)
	f := gather(t, reg)
	assert.Equal(t, 2.0, f.value("exed_ssh_dial_duration_seconds", "result", "ok"))
	assert.Equal(t, 1.0, f.value("exed_ssh_dial_duration_seconds", "result", "error"))
	assert.Equal(t, 2.0, f.value("exed_ssh_pool_connections"))

	// Pooled connections are reused: no new dial but the one that fails.
	run()
	f = gather(t, reg)
	assert.Equal(t, 2.0, f.value("exed_ssh_dial_duration_seconds", "result", "ok"))
	assert.Equal(t, 2.0, f.value("exed_ssh_dial_duration_seconds", "result", "error"))
	assert.Equal(t, 2.0, f.value("exed_ssh_pool_connections"))

	require.NoError(t, x.Close())
	assert.Equal(t, 0.0, gather(t, reg).value("exed_ssh_pool_connections"))
}
