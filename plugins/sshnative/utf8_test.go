package sshnative_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// notUTF8 prints Latin-1 on stdout and a stray byte on stderr.
const notUTF8 = `printf 'caf\351\n'; printf '\377 err\n' >&2`

// checkNotUTF8 runs notUTF8, a command whose output the cap cuts inside a
// character, and the deploy role of latin1Role on hosts, and checks that
// every host has its results as text: each bad byte one U+FFFD, no
// character cut in two.
func checkNotUTF8(t *testing.T, x *sshnative.Executor, hosts []string) {
	t.Helper()
	ctx := context.Background()
	evs := collect(t, func(emit exe.Emit) error {
		return x.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: notUTF8}, emit)
	})
	require.Len(t, evs, len(hosts))
	for _, h := range hosts {
		assert.Equal(t, exe.HostChanged, evs[h].Status, "%s: %s", h, evs[h].Msg)
		require.NotNil(t, evs[h].Exec, h)
		assert.Equal(t, exe.ExecResult{Stdout: "caf\uFFFD\n", Stderr: "\uFFFD err\n"}, *evs[h].Exec, h)
	}
	// The cap (9 bytes) falls inside the fifth é; stderr's inside a €.
	evs = collect(t, func(emit exe.Emit) error {
		return x.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: `printf 'ééééé'; printf '12345678€' >&2`}, emit)
	})
	for _, h := range hosts {
		assert.Equal(t, exe.ExecResult{Stdout: "éééé", Stderr: "12345678"}, *evs[h].Exec, h)
		assert.True(t, evs[h].Truncated, h)
	}
	// The cap bounds the field, not the bytes: 8 bad bytes are within the
	// cap of 9, their 8 U+FFFD (24 bytes) are not.
	evs = collect(t, func(emit exe.Emit) error {
		return x.Execute(ctx, hosts, exe.ExecuteArgs{Cmd: `printf '\377\377\377\377\377\377\377\377'`}, emit)
	})
	for _, h := range hosts {
		assert.Equal(t, exe.ExecResult{Stdout: "\uFFFD\uFFFD\uFFFD"}, *evs[h].Exec, h)
		assert.True(t, evs[h].Truncated, h)
	}
	// Deploy steps' messages are built from their output.
	var steps []exe.Event
	var mu sync.Mutex
	require.NoError(t, x.Deploy(ctx, hosts, exe.DeployArgs{Role: "latin1", Partial: []string{"ok", "broken"}}, func(ev exe.Event) {
		mu.Lock()
		steps = append(steps, ev)
		mu.Unlock()
	}))
	require.Len(t, steps, 1+2*len(hosts))
	for _, h := range hosts {
		var got []exe.Event
		for _, ev := range steps {
			if ev.Host == h {
				got = append(got, ev)
			}
		}
		require.Len(t, got, 2, h)
		assert.Equal(t, exe.Event{Host: h, Status: exe.HostChanged, Name: "tags/ok.sh", Msg: "caf\uFFFD",
			Exec: &exe.ExecResult{Stdout: "caf\uFFFD\n"}}, got[0])
		assert.Equal(t, exe.Event{Host: h, Status: exe.HostFailed, Name: "tags/broken.sh", Msg: "tags/broken.sh exited 3: bad \uFFFD",
			Exec: &exe.ExecResult{RTC: 3, Stderr: "bad \uFFFD\n"}}, got[1])
	}
}

// latin1Role is a deploy role whose scripts print bytes that are not UTF-8.
func latin1Role(t *testing.T) string {
	roles := t.TempDir()
	writeRole(t, roles, "latin1", map[string]string{
		"tags/ok.sh":     `printf 'caf\351\n'`,
		"tags/broken.sh": `printf 'bad \377\n' >&2; exit 3`,
	})
	return roles
}

func TestExecuteOutputNotUTF8(t *testing.T) {
	inv, err := inventory.Parse(strings.NewReader("localhost ansible_connection=local\nother ansible_connection=local\n"), "t")
	require.NoError(t, err)
	checkNotUTF8(t, newExec(t, sshnative.Config{Inventory: inv, OutputCap: 9, Roles: latin1Role(t)}), []string{"localhost", "other"})
}

func TestSSHOutputNotUTF8(t *testing.T) {
	f := newFleet(t, 2, sshnative.Config{OutputCap: 9, Roles: latin1Role(t)})
	checkNotUTF8(t, f.exec, f.hosts(t, "fleet"))
}
