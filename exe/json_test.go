package exe_test

import (
	"encoding/json"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventWireForm(t *testing.T) {
	ev := exe.Event{Host: "h", Seq: 3, Status: exe.HostFailed, Msg: "command exited 2", Truncated: true,
		Exec: &exe.ExecResult{RTC: 2, Stdout: "", Stderr: "no"}, Extra: map[string]any{"changed": false, "status": "ignored"}}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":3,"msg":"command exited 2","rtc":2,"stdout":"","stderr":"no","truncated":true,"changed":false}`, string(b),
		"host and seq are not fields; extras never override standard ones")

	var back exe.Event
	require.NoError(t, json.Unmarshal(b, &back))
	ev.Host, ev.Seq, ev.Extra = "", 0, map[string]any{"changed": false}
	assert.Equal(t, ev, back)

	b, err = json.Marshal(exe.Event{Status: exe.HostOK})
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":1}`, string(b), "ping's event is just a status")
}

func TestJobWireForm(t *testing.T) {
	job := exe.Job{JID: "c4f6acd3-4dda-44d0-8f99-76b4587e55d0", State: exe.JobDone, StartAt: 1488272314, EndAt: 1488272320, User: "deployer",
		Request: exe.Request{Operate: exe.OpDeploy, Targets: []string{"molten-core.0ops.io", "karazhan.0ops.io"},
			Deploy: exe.DeployArgs{Role: "nginx"}},
		ReturnData: map[string][]exe.Event{"molten-core.0ops.io": {{Host: "molten-core.0ops.io", Status: exe.HostChanged, Name: "main.sh"}}}}
	b, err := json.Marshal(job)
	require.NoError(t, err)
	assert.JSONEq(t, `{"jid":"c4f6acd3-4dda-44d0-8f99-76b4587e55d0","state":0,"error":"","startat":1488272314,"endat":1488272320,
		"operate":"deploy","operate_args":{"role":"nginx","partial":null,"extra_vars":{}},
		"targets":["molten-core.0ops.io","karazhan.0ops.io"],"user":"deployer",
		"return_data":{"molten-core.0ops.io":[{"status":5,"name":"main.sh"}]}}`, string(b))
	var back exe.Job
	require.NoError(t, json.Unmarshal(b, &back))
	job.Deploy.ExtraVars = map[string]any{}
	assert.Equal(t, job, back)

	b, err = json.Marshal(exe.Job{JID: "x", Request: exe.Request{Operate: exe.OpService, Targets: []string{"a"},
		Service: exe.ServiceArgs{Name: "nginx", State: exe.ServiceRestarted, Graceful: true}}})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"operate_args":{"name":"nginx","state":2,"graceful":true}`)
	assert.Contains(t, string(b), `"return_data":{}`)
}

func TestStateStrings(t *testing.T) {
	names := []string{"ANNOUNCE", "OK", "SKIPPED", "FAILED", "UNREACHABLE", "CHANGED"}
	for i, n := range names {
		assert.Equal(t, n, exe.HostStatus(i).String())
	}
	assert.Equal(t, "Failure", exe.JobFailure.String())
	assert.True(t, exe.HostUnreachable.Failure())
	assert.False(t, exe.HostSkipped.Failure())
}
