package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCancelRightAfterSubmit cancels jobs the moment they are accepted,
// when the cancel can reach the executor plugin before the operation it
// names. The command must be stopped, never left to run to its end and
// reported as if nothing had been asked.
func TestCancelRightAfterSubmit(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n[runner]\nconcurrency = 4\n", freePort(t)))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	for i := 0; i < 12; i++ {
		code, body := httpDo(t, "POST", base+"/execute", `{"targets":["localhost"],"cmd":"sleep 5; echo ran to its end"}`)
		require.Equal(t, 201, code, string(body))
		var created map[string]string
		require.NoError(t, json.Unmarshal(body, &created))
		code, body = httpDo(t, "POST", base+"/jobs/"+created["jid"]+"/cancel", "")
		if code == 409 {
			continue // finished already: nothing to check
		}
		require.Equal(t, 202, code, string(body))
		code, body = httpDo(t, "GET", base+"/jobs/"+created["jid"]+"?outputs=1", "")
		require.Equal(t, 200, code)
		var job map[string]any
		require.NoError(t, json.Unmarshal(body, &job))
		events, _ := job["return_data"].(map[string]any)["localhost"].([]any)
		require.Len(t, events, 1, "run %d: %s", i, body)
		ev := events[0].(map[string]any)
		assert.NotContains(t, fmt.Sprint(ev["stdout"]), "ran to its end", "run %d: the cancelled command ran to its end", i)
		// FAILED "cancelled" when interrupted, SKIPPED when it had not started.
		assert.Contains(t, []any{3.0, 2.0}, ev["status"], "run %d: %v", i, ev)
		assert.EqualValues(t, 2, job["state"])
		assert.True(t, strings.HasPrefix(fmt.Sprint(job["error"]), "cancelled"), "%v", job["error"])
	}
	p.stop(t)
}
