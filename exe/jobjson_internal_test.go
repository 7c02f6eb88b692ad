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

// jsonEvent has every field of the wire form, HTML and line separators
// in its texts and invalid UTF-8.
var jsonEvent = Event{Host: "a", Status: HostFailed, Msg: "<nope> & \u2028", Exec: &ExecResult{RTC: 1, Stdout: "a\u2029b\x01", Stderr: "\xff"},
	Extra: map[string]any{"z": 1.5, "a": []any{"<", nil, map[string]any{"k": "&"}}}}

// jsonJobs are jobs of every operation, with HTML escapes, nil and empty
// maps and lists.
var jsonJobs = []Job{
	{JID: "j1", Request: Request{Operate: OpPing, Targets: []string{"localhost"}}},
	{JID: "j2", State: JobFailure, Error: "<b>&</b>", StartAt: 1, EndAt: 2, User: "u<1>",
		Request:    Request{Operate: OpExecute, Targets: []string{"a", "b"}, Execute: ExecuteArgs{Cmd: "echo '<x>' && true"}, Timeout: 1500 * time.Millisecond, Forks: 3},
		ReturnData: map[string][]Event{"a": {jsonEvent}, "b": {}}},
	{JID: "j3", Request: Request{Operate: OpService, Service: ServiceArgs{Name: "nginx", State: ServiceRestarted, Graceful: true}}},
	{JID: "j4", Request: Request{Operate: OpDeploy, Targets: []string{}, Deploy: DeployArgs{Role: "r", Partial: []string{"x<"}}}},
	{JID: "j5", Request: Request{Operate: OpDeploy, Deploy: DeployArgs{Role: "r", ExtraVars: map[string]any{"b": map[string]any{"<": true}, "a": 1e21}}}},
	{JID: "j6", Request: Request{Operate: OpTask, Task: TaskArgs{Name: "n", Type: "rollingrestart"}, Timeout: time.Nanosecond}},
	{JID: "j7", Request: Request{Operate: OpTask, Task: TaskArgs{Name: "n", Type: "t", Options: map[string]any{"x": "\xff"}}}},
	{JID: "j8", Request: Request{Operate: OpFacter}},
	{},
}

// A job's JSON is byte for byte what the two passes wrote.
func TestJobJSONOnePass(t *testing.T) {
	for _, j := range jsonJobs {
		want, err := twoPassJSON(j)
		require.NoError(t, err)
		got, err := j.MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), j.JID)
	}
}

// MarshalJSON's bytes are json.Marshal's, which only checks and compacts
// them once more: the stores and the API call the method and skip that.
func TestMarshalJSONIsJSONMarshal(t *testing.T) {
	for _, j := range jsonJobs {
		want, err := json.Marshal(j)
		require.NoError(t, err)
		got, err := j.MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), j.JID)
	}
	for _, ev := range []Event{jsonEvent, {}, {Host: "h", Status: HostOK, Name: "step <1>", Facts: map[string]any{"os": "<&>"}, Truncated: true}} {
		want, err := json.Marshal(ev)
		require.NoError(t, err)
		got, err := ev.MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), ev.Name)
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
