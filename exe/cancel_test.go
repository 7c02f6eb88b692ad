package exe_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// localFleet is the embedded default on an inventory of three hosts with
// a local connection, worked on one at a time.
func localFleet(t *testing.T, opts exe.LocalOptions) *harness {
	t.Helper()
	inv, err := inventory.Parse(strings.NewReader("[fleet]\na ansible_connection=local\nb ansible_connection=local\nc ansible_connection=local\n"), "fleet.ini")
	require.NoError(t, err)
	x, err := sshnative.New(sshnative.Config{Inventory: inv, Forks: 1, KillGrace: 300 * time.Millisecond})
	require.NoError(t, err)
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Dispatcher: exe.NewLocalDispatcher(opts), Executor: x})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return &harness{engine: eng, store: store}
}

// firstFastThenStuck is a command for hosts run one at a time: the first
// host prints "fast" and ends; the next prints "started", writes its pid
// to pidFile and runs on, ignoring SIGHUP.
func firstFastThenStuck(dir, pidFile string) string {
	return fmt.Sprintf(`if mkdir %[1]s/first 2>/dev/null; then echo fast; else
	echo started; trap '' HUP; echo $$ > %[2]s.tmp; mv %[2]s.tmp %[2]s; while :; do sleep 1; done; fi`, dir, pidFile)
}

// After a cancel every host has its last event, stored before the job
// ended: the host that had finished its result, the host that was running
// FAILED "cancelled" with what it printed, the host never started SKIPPED.
func TestCancelReportsEveryHost(t *testing.T) {
	h := localFleet(t, exe.LocalOptions{})
	ctx := context.Background()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	jid, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b", "c"},
		Execute: exe.ExecuteArgs{Cmd: firstFastThenStuck(dir, pidFile)}})
	require.NoError(t, err)
	pid := testenv.WaitPIDFile(t, pidFile, 10*time.Second)

	// A follower sees every host's last event before the final job.
	followed := make(chan []exe.Event, 1)
	go func() {
		var evs []exe.Event
		_, _ = h.engine.Follow(ctx, jid, func(ev exe.Event) error { evs = append(evs, ev); return nil })
		followed <- evs
	}()

	job, err := h.engine.Cancel(ctx, jid)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State, "Cancel returns the job ended")
	assert.Equal(t, "cancelled", job.Error)
	job, err = h.engine.Job(ctx, jid, true)
	require.NoError(t, err)
	require.Len(t, job.ReturnData, 3, "%v", job.ReturnData)
	assert.Equal(t, exe.Event{Host: "a", Seq: 1, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: "fast\n"}}, job.ReturnData["a"][0])
	assert.Equal(t, exe.Event{Host: "b", Seq: 2, Status: exe.HostFailed, Msg: "cancelled",
		Exec: &exe.ExecResult{RTC: -1, Stdout: "started\n"}}, job.ReturnData["b"][0])
	assert.Equal(t, exe.Event{Host: "c", Seq: 3, Status: exe.HostSkipped, Msg: "cancelled before start"}, job.ReturnData["c"][0])
	select {
	case evs := <-followed:
		require.Len(t, evs, 3)
		assert.Equal(t, []string{"a", "b", "c"}, []string{evs[0].Host, evs[1].Host, evs[2].Host})
	case <-time.After(10 * time.Second):
		t.Fatal("the follow did not end with the job")
	}
	require.Eventually(t, func() bool { return testenv.Ended(pid) }, 5*time.Second, 10*time.Millisecond,
		"the command that ignores SIGHUP was stopped")
}

// A job cancelled while queued never runs; its hosts are SKIPPED.
func TestCancelQueuedJob(t *testing.T) {
	h := localFleet(t, exe.LocalOptions{Workers: 1})
	ctx := context.Background()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	first, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "b"},
		Execute: exe.ExecuteArgs{Cmd: firstFastThenStuck(dir, pidFile)}})
	require.NoError(t, err)
	testenv.WaitPIDFile(t, pidFile, 10*time.Second)
	ran := filepath.Join(dir, "queued-ran")
	queued, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: []string{"a", "c"},
		Execute: exe.ExecuteArgs{Cmd: "touch " + ran}})
	require.NoError(t, err)

	job, err := h.engine.Cancel(ctx, queued)
	require.NoError(t, err)
	assert.Equal(t, exe.JobFailure, job.State)
	assert.Equal(t, "cancelled", job.Error)
	job, err = h.engine.Job(ctx, queued, true)
	require.NoError(t, err)
	for _, host := range []string{"a", "c"} {
		require.Len(t, job.ReturnData[host], 1, host)
		assert.Equal(t, exe.HostSkipped, job.ReturnData[host][0].Status)
		assert.Equal(t, "cancelled before start", job.ReturnData[host][0].Msg)
	}

	// The worker goes on to the queued job once the first ends, and a
	// later job after it: when that one is done, the cancelled one was
	// passed over.
	_, err = h.engine.Cancel(ctx, first)
	require.NoError(t, err)
	later, err := h.engine.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: []string{"a"}})
	require.NoError(t, err)
	done, _ := h.wait(t, later)
	assert.Equal(t, exe.JobDone, done.State)
	assert.NoFileExists(t, ran, "the cancelled job never ran")
}
