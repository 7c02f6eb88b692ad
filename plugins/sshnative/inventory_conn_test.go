package sshnative_test

import (
	"context"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInventoryConnectionsReachTheRightHost runs `id -un; echo
// $SSH_CONNECTION` on hosts written the ways Ansible inventories write
// them: a listed 127.0.0.1 with a port goes over SSH to that port (only an
// unlisted localhost is local), and the legacy ansible_ssh_* variables give
// the address, port and user.
func TestInventoryConnectionsReachTheRightHost(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	me, err := user.Current()
	require.NoError(t, err)
	text := fmt.Sprintf("[vms]\n127.0.0.1:%d ansible_user=%s\n[legacy]\nnode-0 ansible_ssh_host=127.0.0.1 ansible_ssh_port=%d ansible_ssh_user=%s ansible_host=192.0.2.1 ansible_port=1 ansible_user=nobody\n",
		s.Port, s.User, s.Port, s.User)
	inv, err := inventory.Parse(strings.NewReader(text), "hosts.ini")
	require.NoError(t, err)
	x := newExec(t, sshnative.Config{Inventory: inv, SSH: sshnative.SSHOptions{
		User: "exe-default-user-unused", KeyFiles: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}, NoAgent: true}})
	t.Cleanup(func() { _ = x.Close() })

	run := func(x *sshnative.Executor, hosts ...string) map[string]exe.Event {
		return collect(t, func(emit exe.Emit) error {
			return x.Execute(context.Background(), hosts, exe.ExecuteArgs{Cmd: `id -un; echo "ssh:${SSH_CONNECTION:-none}"`}, emit)
		})
	}
	// localhost stands for the listed 127.0.0.1, as in Ansible.
	evs := run(x, "127.0.0.1", "node-0", "localhost")
	for _, h := range []string{"127.0.0.1", "node-0", "localhost"} {
		ev := evs[h]
		require.Equal(t, exe.HostChanged, ev.Status, "%s: %s", h, ev.Msg)
		lines := strings.Split(strings.TrimSpace(ev.Exec.Stdout), "\n")
		require.Len(t, lines, 2, h)
		assert.Equal(t, s.User, lines[0], "%s: the inventory's user", h)
		conn := strings.Fields(strings.TrimPrefix(lines[1], "ssh:"))
		require.Len(t, conn, 4, "%s: over SSH: %q", h, lines[1])
		assert.Equal(t, strconv.Itoa(s.Port), conn[3], "%s: the inventory's port", h)
	}

	// Without a listed localhost, localhost is the implicit local one.
	inv, err = inventory.Parse(strings.NewReader("[web]\nweb1\n"), "hosts.ini")
	require.NoError(t, err)
	local := newExec(t, sshnative.Config{Inventory: inv})
	t.Cleanup(func() { _ = local.Close() })
	ev := run(local, "localhost")["localhost"]
	require.Equal(t, exe.HostChanged, ev.Status, ev.Msg)
	assert.True(t, strings.HasPrefix(ev.Exec.Stdout, me.Username+"\n"), "the unlisted localhost runs here as exed's user: %q", ev.Exec.Stdout)
}
