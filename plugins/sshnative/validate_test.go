package sshnative_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A deploy that Deploy would refuse is refused by ValidateRequest, before
// the job is stored, with the same message; nothing runs either way.
func TestValidateRequestRefusesWhatDeployWould(t *testing.T) {
	roles := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	writeRole(t, roles, "web", map[string]string{"main.sh": "touch " + marker + "\n", "tags/reload.sh": "touch " + marker + "\n"})
	writeRole(t, roles, "big", map[string]string{"main.sh": strings.Repeat("#", 101<<10)})
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "empty"), 0o755))
	x := newExec(t, sshnative.Config{Roles: roles})
	ctx := context.Background()
	deploy := func(args exe.DeployArgs) exe.Request {
		return exe.Request{Operate: exe.OpDeploy, Targets: []string{"localhost"}, Deploy: args}
	}
	for _, c := range []struct {
		args exe.DeployArgs
		msg  string
	}{
		{exe.DeployArgs{Role: "nope"}, `role: "nope" not found in the roles directory`},
		{exe.DeployArgs{Role: "empty"}, `role: "empty" has no main.sh`},
		{exe.DeployArgs{Role: "web", Partial: []string{"reload", "nope"}}, `partial: role "web" has no tag script tags/nope.sh`},
		{exe.DeployArgs{Role: "big"}, `role "big": main.sh is larger than 100 KiB`},
		{exe.DeployArgs{Role: "web", ExtraVars: map[string]any{"k": "a\x00b"}}, `extra_vars: "k" contains a NUL byte`},
		{exe.DeployArgs{Role: "web", ExtraVars: map[string]any{"server-name": "a", "server_name": "b"}}, `extra_vars: "server-name" and "server_name" both become EXE_VAR_SERVER_NAME`},
		{exe.DeployArgs{Role: "web", ExtraVars: map[string]any{"Port": 1, "port": 2}}, `extra_vars: "Port" and "port" both become EXE_VAR_PORT`},
	} {
		err := x.ValidateRequest(ctx, deploy(c.args))
		assert.ErrorIs(t, err, exe.ErrInvalid, c.msg)
		assert.EqualError(t, err, c.msg)
		_, derr := deployEvents(t, x, []string{"localhost"}, c.args)
		assert.EqualError(t, derr, c.msg, "Deploy refuses it the same way")
	}
	assert.NoFileExists(t, marker, "nothing ran")

	require.NoError(t, x.ValidateRequest(ctx, deploy(exe.DeployArgs{Role: "web", Partial: []string{"reload"}, ExtraVars: map[string]any{"port": 80.0}})))
	require.NoError(t, x.ValidateRequest(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"localhost"}, Execute: exe.ExecuteArgs{Cmd: "true"}}))
}
