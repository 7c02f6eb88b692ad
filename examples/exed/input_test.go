package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A deploy the executor plugin would refuse (its role is missing, its
// extra_vars cannot reach the scripts) is a 400 at submit: the check
// crosses the plugin protocol, and nothing is stored.
func TestDeployRefusedAtSubmit(t *testing.T) {
	dir := t.TempDir()
	roles := filepath.Join(dir, "roles")
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "web"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(roles, "web", "main.sh"), []byte("echo deployed\n"), 0o755))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[sshnative]\nroles = %s\n", freePort(t), roles))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	for body, want := range map[string]string{
		`{"targets":["localhost"],"role":"nope"}`:                                   `role: "nope" not found in the roles directory`,
		`{"targets":["localhost"],"role":"web","partial":["reload"]}`:               `partial: role "web" has no tag script tags/reload.sh`,
		`{"targets":["localhost"],"role":"web","extra_vars":{"a-b":1,"a_b":2}}`:     `extra_vars: "a-b" and "a_b" both become EXE_VAR_A_B`,
		`{"targets":["localhost"],"role":"web","extra_vars":{"k":"x\u0000y"}}`:      `extra_vars: "k" contains a NUL byte`,
		`{"targets":["localhost"],"role":"web","extra_vars":{"port":1,"port":2}}`:   `extra_vars: duplicate key "port"`,
		`{"targets":["localhost"],"role":"web","Extra_Vars":{"a-b":1,"a_b":2}}`:     ``,
		`{"targets":["localhost"],"role":"web","extra_vars":{"server_name":"a"}}`:   ``,
		`{"targets":["localhost"],"role":"web","extra_vars":{"Server_Name":"b"}} `:  ``,
		`{"targets":["localhost"],"role":"web","extra_vars":{"ansible_user":"x"}} `: ``, // only the ansible executor reserves them
	} {
		code, got := httpDo(t, "POST", base+"/deploy", body)
		if want == "" {
			require.Equal(t, 201, code, body+": "+string(got))
			var created map[string]string
			require.NoError(t, json.Unmarshal(got, &created))
			job := follow(t, base, created["jid"])
			assert.EqualValues(t, 0, job["state"], "%s: %v", body, job)
			continue
		}
		assert.Equal(t, 400, code, body+": "+string(got))
		var msg map[string]string
		require.NoError(t, json.Unmarshal(got, &msg))
		assert.Equal(t, map[string]string{"message": want}, msg, body)
	}
	code, got := httpDo(t, "GET", base+"/jobs", "")
	require.Equal(t, 200, code)
	var ids []string
	require.NoError(t, json.Unmarshal(got, &ids))
	assert.Len(t, ids, 4, "only the accepted deploys were stored")
	p.stop(t)
}
