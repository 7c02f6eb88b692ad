package exe

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoPassJSON is the job object as MarshalJSON wrote it before it encoded
// the arguments in the same pass: the arguments first, then the job with
// them as a json.RawMessage.
func twoPassJSON(j Job) ([]byte, error) {
	args, err := json.Marshal(j.Request.args())
	if err != nil {
		return nil, err
	}
	rd := j.ReturnData
	if rd == nil {
		rd = map[string][]Event{}
	}
	targets := j.Targets
	if targets == nil {
		targets = []string{}
	}
	return json.Marshal(jobWire[json.RawMessage]{
		JID: j.JID, State: j.State, Error: j.Error, StartAt: j.StartAt, EndAt: j.EndAt,
		Operate: j.Operate, OperateArgs: args, Targets: targets, Timeout: j.Timeout.Seconds(),
		Forks: j.Forks, User: j.User, ReturnData: rd,
	})
}

// A job's JSON is byte for byte what the two passes wrote, for every
// operation's arguments, HTML escapes, nil and empty maps and lists.
func TestJobJSONOnePass(t *testing.T) {
	ev := Event{Host: "a", Status: HostFailed, Msg: "<nope> & \u2028", Exec: &ExecResult{RTC: 1, Stdout: "a\u2029b\x01"},
		Extra: map[string]any{"z": 1.5, "a": []any{"<", nil, map[string]any{"k": "&"}}}}
	for _, j := range []Job{
		{JID: "j1", Request: Request{Operate: OpPing, Targets: []string{"localhost"}}},
		{JID: "j2", State: JobFailure, Error: "<b>&</b>", StartAt: 1, EndAt: 2, User: "u<1>",
			Request:    Request{Operate: OpExecute, Targets: []string{"a", "b"}, Execute: ExecuteArgs{Cmd: "echo '<x>' && true"}, Timeout: 1500 * time.Millisecond, Forks: 3},
			ReturnData: map[string][]Event{"a": {ev}, "b": {}}},
		{JID: "j3", Request: Request{Operate: OpService, Service: ServiceArgs{Name: "nginx", State: ServiceRestarted, Graceful: true}}},
		{JID: "j4", Request: Request{Operate: OpDeploy, Targets: []string{}, Deploy: DeployArgs{Role: "r", Partial: []string{"x<"}}}},
		{JID: "j5", Request: Request{Operate: OpDeploy, Deploy: DeployArgs{Role: "r", ExtraVars: map[string]any{"b": map[string]any{"<": true}, "a": 1e21}}}},
		{JID: "j6", Request: Request{Operate: OpTask, Task: TaskArgs{Name: "n", Type: "rollingrestart"}, Timeout: time.Nanosecond}},
		{JID: "j7", Request: Request{Operate: OpTask, Task: TaskArgs{Name: "n", Type: "t", Options: map[string]any{"x": "\xff"}}}},
		{JID: "j8", Request: Request{Operate: OpFacter}},
		{},
	} {
		want, err := twoPassJSON(j)
		require.NoError(t, err)
		got, err := j.MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), j.JID)
	}
}

// BenchmarkJobMarshalJSON is a ping job's JSON, as GET /jobs/{jid}
// answers it, written by MarshalJSON and by the two passes it replaced.
func BenchmarkJobMarshalJSON(b *testing.B) {
	j := Job{JID: "0b6c1c1e-8f0e-4c53-9d4a-4a3c3f1f2b7e", State: JobDone, StartAt: 1, EndAt: 2,
		Request: Request{Operate: OpPing, Targets: []string{"localhost"}}}
	for name, marshal := range map[string]func(Job) ([]byte, error){"one pass": Job.MarshalJSON, "two passes": twoPassJSON} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshal(j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
