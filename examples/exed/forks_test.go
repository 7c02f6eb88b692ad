package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request's forks, through the built server and its executor plugin:
// six hosts, each blocked until the probe lets it go, run two at a time
// for "forks":2, and a sync request's forks=10 is lowered to the
// server's [runner] concurrency (3), which the job object and the hosts'
// own counts show.
func TestRequestForks(t *testing.T) {
	dir := t.TempDir()
	p := startOnInventory(t, dir, "[fleet]\nh[1:6] ansible_connection=local\n", "[runner]\nconcurrency = 3\n")
	base := "http://" + p.addr

	probe := testenv.NewForksProbe(t, dir)
	jid := post(t, base, "/execute", fmt.Sprintf(`{"targets":["h1","h2","h3","h4","h5","h6"],"cmd":%q,"forks":2}`, probe.Cmd()))
	probe.Drive(6, 2)
	final := follow(t, base, jid)
	assert.EqualValues(t, 0, final["state"], final["error"])
	assert.EqualValues(t, 2, final["forks"], "the job object carries its forks")
	assert.Equal(t, 2, slices.Max(probe.Seen()))

	probe = testenv.NewForksProbe(t, dir)
	q := url.Values{"target": {"h1", "h2", "h3", "h4", "h5", "h6"}, "cmd": {probe.Cmd()}, "forks": {"10"}}
	type answer struct {
		res *http.Response
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := http.Get(base + "/execute?" + q.Encode())
		done <- answer{res, err}
	}()
	probe.Drive(6, 3)
	a := <-done
	require.NoError(t, a.err)
	defer a.res.Body.Close()
	require.Equal(t, 200, a.res.StatusCode)
	var res map[string]map[string]any
	require.NoError(t, json.NewDecoder(a.res.Body).Decode(&res))
	require.Len(t, res, 6)
	for host, ev := range res {
		assert.EqualValues(t, 5, ev["status"], "%s: %v", host, ev["msg"])
		assert.Equal(t, "released\n", ev["stdout"], host)
	}
	assert.Equal(t, 3, slices.Max(probe.Seen()))
	p.stop(t)
}
