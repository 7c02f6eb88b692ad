package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sighup sends SIGHUP to the server and waits (bounded) for one more log
// line holding want; the server must still run.
func (p *proc) sighup(t *testing.T, want string) {
	t.Helper()
	before := strings.Count(p.logs.String(), want)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Count(p.logs.String(), want) > before },
		30*time.Second, 10*time.Millisecond, "no %q after SIGHUP\n%s", want, p.logs)
	select {
	case err := <-p.done:
		t.Fatalf("SIGHUP ended exed: %v\n%s", err, p.logs)
	default:
	}
}

// SIGHUP re-reads the inventory: new hosts are targets as soon as the
// reload is logged; an inventory that no longer loads is refused with a
// log line naming the cause, and the one in use stays; a job running
// across both reloads ends as it would have.
func TestSIGHUPReloadsInventory(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb1 ansible_connection=local\n"), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[sshnative]\ninventory = %s\n", freePort(t), inv))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	target := func() []string {
		t.Helper()
		code, body := httpDo(t, "GET", base+"/target?pattern=all", "")
		require.Equal(t, 200, code, string(body))
		var hosts []string
		require.NoError(t, json.Unmarshal(body, &hosts))
		return hosts
	}
	assert.Equal(t, []string{"web1"}, target())
	release := filepath.Join(dir, "release")
	running := post(t, base, "/execute", fmt.Sprintf(`{"targets":["web1"],"cmd":"while [ ! -e %s ]; do sleep 0.05; done; echo survived"}`, release))

	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n[db]\ndb1 ansible_connection=local\n"), 0o600))
	p.sighup(t, "reload done")
	assert.Contains(t, p.logs.String(), "inventory reloaded")
	assert.Equal(t, []string{"db1", "web1", "web2"}, target())
	code, body := httpDo(t, "GET", base+"/ping?target=web2", "")
	require.Equal(t, 200, code, string(body))
	assert.JSONEq(t, `{"web2":{"status":1}}`, string(body))

	require.NoError(t, os.WriteFile(inv, []byte("[web]\nweb[01:04\n"), 0o600))
	p.sighup(t, "reload done")
	assert.Contains(t, p.logs.String(), "the inventory was not reloaded; the one in use stays")
	assert.Contains(t, p.logs.String(), "unterminated range")
	assert.Equal(t, []string{"db1", "web1", "web2"}, target(), "a broken inventory keeps the one in use")

	require.NoError(t, os.WriteFile(release, nil, 0o600))
	final := follow(t, base, running)
	assert.EqualValues(t, 0, final["state"], "the job running across both reloads ends Done: %v", final)
	p.stop(t)
}
