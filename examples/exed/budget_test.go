package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// [runner] max_job_bytes bounds the output the in-memory store keeps: with
// 1 MiB, jobs of 400 kB of output each leave the newest two, the first to
// finish dropped first; exed says at start that memory jobs do not
// survive it.
func TestJobByteBudget(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nmax_job_bytes = 1M\n", freePort(t)))
	p := start(t, dir, "-c", conf)
	assert.Contains(t, p.logs.String(), "jobs are kept in memory and lost when exed stops or crashes")
	assert.Contains(t, p.logs.String(), "max_job_bytes=1048576")
	base := "http://" + p.addr
	var jids []string
	for i := 0; i < 4; i++ {
		jid := post(t, base, "/execute", fmt.Sprintf(`{"targets":["localhost"],"cmd":"head -c 400000 /dev/zero | tr '\\0' x; echo %d"}`, i))
		job := follow(t, base, jid)
		require.EqualValues(t, 0, job["state"], "%v", job)
		jids = append(jids, jid)
	}
	code, body := httpDo(t, "GET", base+"/jobs", "")
	require.Equal(t, 200, code)
	var ids []string
	require.NoError(t, json.Unmarshal(body, &ids))
	assert.Equal(t, []string{jids[3], jids[2]}, ids)
	code, _ = httpDo(t, "GET", base+"/jobs/"+jids[0], "")
	assert.Equal(t, 404, code, "dropped to make room")

	code, body = httpDo(t, "GET", base+"/jobs/"+jids[3]+"?outputs=1", "")
	require.Equal(t, 200, code)
	var job struct {
		ReturnData map[string][]struct {
			Stdout string `json:"stdout"`
		} `json:"return_data"`
	}
	require.NoError(t, json.Unmarshal(body, &job))
	require.Len(t, job.ReturnData["localhost"], 1)
	out := job.ReturnData["localhost"][0].Stdout
	assert.Len(t, out, 400002)
	assert.True(t, out == strings.Repeat("x", 400000)+"3\n", "the kept jobs are whole")
	p.stop(t)
}
