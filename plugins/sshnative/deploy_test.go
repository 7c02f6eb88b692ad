package sshnative_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeRole creates roles/<role>/ with the given scripts (path -> body).
func writeRole(t *testing.T, roles, role string, scripts map[string]string) {
	t.Helper()
	for name, body := range scripts {
		p := filepath.Join(roles, role, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o755))
	}
}

// events runs a deploy and returns its events in order.
func deployEvents(t *testing.T, x *sshnative.Executor, hosts []string, args exe.DeployArgs) ([]exe.Event, error) {
	var mu sync.Mutex
	var evs []exe.Event
	err := x.Deploy(context.Background(), hosts, args, func(ev exe.Event) {
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
	})
	return evs, err
}

func TestDeployScriptRoleLocally(t *testing.T) {
	roles := t.TempDir()
	out := t.TempDir()
	writeRole(t, roles, "web", map[string]string{
		// stdin carries extra_vars as JSON; EXE_VAR_* carries each var.
		"main.sh":         "cat > " + out + "/vars.json\nprintf '%s|%s' \"$EXE_VAR_SERVER_NAME\" \"$EXE_VAR_PORTS\" > " + out + "/env\necho configured\n",
		"tags/reload.sh":  "echo reload >> " + out + "/steps\n",
		"tags/restart.sh": "echo restart >> " + out + "/steps\n",
		"tags/broken.sh":  "echo oops >&2; exit 4\n",
	})
	x := newExec(t, sshnative.Config{Roles: roles})
	vars := map[string]any{"server-name": "exe.0ops.io", "ports": []any{80.0, 443.0}, "quote": `'; touch /tmp/pwned; '`}
	evs, err := deployEvents(t, x, []string{"localhost"}, exe.DeployArgs{Role: "web", ExtraVars: vars})
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.Equal(t, exe.HostAnnounce, evs[0].Status)
	assert.Equal(t, exe.AnnounceHost, evs[0].Host)
	assert.Equal(t, exe.Event{Host: "localhost", Status: exe.HostChanged, Name: "main.sh", Msg: "configured",
		Exec: &exe.ExecResult{Stdout: "configured\n"}}, evs[1])
	b, err := os.ReadFile(out + "/vars.json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"server-name":"exe.0ops.io","ports":[80,443],"quote":"'; touch /tmp/pwned; '"}`, string(b))
	b, err = os.ReadFile(out + "/env")
	require.NoError(t, err)
	assert.Equal(t, "exe.0ops.io|[80,443]", string(b))
	_, err = os.Stat("/tmp/pwned")
	assert.True(t, os.IsNotExist(err), "values are data, never code")

	// partial runs exactly the tagged scripts, in order.
	evs, err = deployEvents(t, x, []string{"localhost"}, exe.DeployArgs{Role: "web", Partial: []string{"restart", "reload"}})
	require.NoError(t, err)
	require.Len(t, evs, 3)
	assert.Equal(t, "tags/restart.sh", evs[1].Name)
	assert.Equal(t, "tags/reload.sh", evs[2].Name)
	b, err = os.ReadFile(out + "/steps")
	require.NoError(t, err)
	assert.Equal(t, "restart\nreload\n", string(b))

	// A failing script is FAILED and ends that host's deploy.
	evs, err = deployEvents(t, x, []string{"localhost"}, exe.DeployArgs{Role: "web", Partial: []string{"broken", "reload"}})
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.Equal(t, exe.HostFailed, evs[1].Status)
	assert.Equal(t, 4, evs[1].Exec.RTC)
	assert.Equal(t, "tags/broken.sh exited 4: oops", evs[1].Msg)

	for args, want := range map[*exe.DeployArgs]string{
		{Role: "nope"}:                         `role: "nope" not found`,
		{Role: "web", Partial: []string{"xx"}}: `partial: role "web" has no tag script tags/xx.sh`,
	} {
		_, err := deployEvents(t, x, []string{"localhost"}, *args)
		assert.ErrorIs(t, err, exe.ErrInvalid)
		assert.ErrorContains(t, err, want)
	}
	writeRole(t, roles, "empty", map[string]string{"tags/x.sh": "true"})
	_, err = deployEvents(t, x, []string{"localhost"}, exe.DeployArgs{Role: "empty"})
	assert.ErrorContains(t, err, `role: "empty" has no main.sh`)
}

func TestDeployOverSSH(t *testing.T) {
	f := newFleet(t, 3, sshnative.Config{})
	out := f.server.WritableDir(t)
	roles := t.TempDir()
	writeRole(t, roles, "app", map[string]string{
		"main.sh": `read -r json; printf '%s %s\n' "$EXE_VAR_VERSION" "$json" > "` + out + `/$EXE_VAR_HOSTFILE-$$"; echo deployed $EXE_VAR_VERSION`,
	})
	x, err := sshnative.New(sshnative.Config{Inventory: f.inv, Roles: roles, SSH: sshnative.SSHOptions{
		User: f.server.User, KeyFiles: []string{f.server.ClientKey}, KnownHosts: []string{f.server.KnownHosts}, NoAgent: true}})
	require.NoError(t, err)
	defer x.Close()
	hosts := f.hosts(t, "fleet")
	evs, err := deployEvents(t, x, hosts, exe.DeployArgs{Role: "app", ExtraVars: map[string]any{"version": "1.2.3", "hostfile": "out"}})
	require.NoError(t, err)
	require.Len(t, evs, 4)
	for _, ev := range evs[1:] {
		assert.Equal(t, exe.HostChanged, ev.Status, "%s: %s", ev.Host, ev.Msg)
		assert.Equal(t, "main.sh", ev.Name)
		assert.Equal(t, "deployed 1.2.3", ev.Msg)
	}
	files, err := filepath.Glob(out + "/out-*")
	require.NoError(t, err)
	require.Len(t, files, 3, "the script ran once per host")
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, `1.2.3 {"hostfile":"out","version":"1.2.3"}`, strings.TrimSpace(string(b)))
}
