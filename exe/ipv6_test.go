package exe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIPv6Targets targets hosts an inventory names by IPv6 address, alone
// and together; they are reached with a local connection here.
func TestIPv6Targets(t *testing.T) {
	for _, name := range []string{"::1", "2001:db8::10", "fe80::1%eth0", "2001:DB8:0:0:0:0:0:11", "web1"} {
		assert.True(t, exe.ValidHostName(name), name)
	}
	for _, name := range []string{"2001:db8::10,web1", "fe80::1%eth0,x", "fe80::1%*", "::1 ", "1.2.3.4:22", "::1:", ""} {
		assert.False(t, exe.ValidHostName(name), name)
	}

	inv, err := inventory.Parse(strings.NewReader(
		"[v6]\n2001:db8::10 ansible_connection=local\nfe80::1%eth0 ansible_connection=local\n[2001:db8::11]:2222 ansible_connection=local\n"), "hosts.ini")
	require.NoError(t, err)
	x, err := sshnative.New(sshnative.Config{Inventory: inv})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, SyncTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })

	for _, targets := range [][]string{{"2001:db8::10"}, {"fe80::1%eth0"}, {"2001:db8::11"}, {"2001:db8::10", "fe80::1%eth0", "2001:db8::11"}} {
		evs, err := eng.RunSync(context.Background(), exe.Request{Operate: exe.OpPing, Targets: targets})
		require.NoError(t, err, targets)
		for _, h := range targets {
			assert.Equal(t, exe.HostOK, evs[h].Status, "%s: %+v", h, evs[h])
		}
	}
	_, err = eng.RunSync(context.Background(), exe.Request{Operate: exe.OpPing, Targets: []string{"2001:db8::99"}})
	assert.ErrorIs(t, err, exe.ErrNoMatch)
}
