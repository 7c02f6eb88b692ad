package memory_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heapAlloc is the live heap after garbage collection.
func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// bigJob stores a finished job of hosts events, each with out bytes of
// stdout and of stderr, freshly allocated.
func bigJob(t *testing.T, s *memory.Store, jid string, hosts, out int) {
	t.Helper()
	ctx := context.Background()
	job := &exe.Job{JID: jid, Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"h"}, Execute: exe.ExecuteArgs{Cmd: "cat big"}}}
	require.NoError(t, s.Create(ctx, job))
	for h := 0; h < hosts; h++ {
		ev := exe.Event{Host: "host" + strconv.Itoa(h), Status: exe.HostChanged,
			Exec: &exe.ExecResult{Stdout: strings.Repeat("o", out), Stderr: strings.Repeat("e", out)}}
		require.NoError(t, s.Append(ctx, jid, ev))
	}
	require.NoError(t, s.Finish(ctx, jid, exe.JobDone, ""))
}

// The byte budget bounds the heap the store holds, measured: 40 jobs of
// 4 MiB of output each keep about the budget, not 160 MiB, and deleting
// the jobs kept gives their memory back.
func TestByteBudgetBoundsTheHeap(t *testing.T) {
	const budget = 16 << 20
	before := heapAlloc()
	s := memory.New(memory.Options{MaxBytes: budget})
	for i := 0; i < 40; i++ {
		bigJob(t, s, fmt.Sprintf("j%02d", i), 8, 256<<10)
	}
	held := heapAlloc() - before
	t.Logf("heap held by the store: %d MiB (budget %d MiB), estimate %d MiB", held>>20, budget>>20, s.Bytes()>>20)
	assert.LessOrEqual(t, s.Bytes(), int64(budget))
	assert.Less(t, held, int64(budget+4<<20), "the heap the store holds stays within the budget")
	assert.Greater(t, held, int64(budget-8<<20), "and the estimate is close to the heap: the budget is not far too generous")

	ids, err := s.List(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"j39", "j38", "j37"}, ids, "the newest jobs are kept, the first to finish went first")

	for _, id := range ids {
		require.NoError(t, s.Delete(context.Background(), id))
	}
	assert.Zero(t, s.Bytes())
	assert.Less(t, heapAlloc()-before, int64(1<<20), "deleted jobs hold nothing")
	runtime.KeepAlive(s)
}

// Finished jobs make room in the order they finished, not the order they
// were created; running ones never do.
func TestByteBudgetDropsTheFirstFinished(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	const mib = 1 << 20
	s := memory.New(memory.Options{MaxBytes: 5 * mib, Now: clock.Now})
	out := exe.Event{Host: "h", Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: strings.Repeat("x", mib)}}
	for _, id := range []string{"a", "b", "c", "run"} {
		require.NoError(t, s.Create(ctx, &exe.Job{JID: id, Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"h"}}}))
		require.NoError(t, s.Append(ctx, id, out))
	}
	for _, id := range []string{"b", "c", "a"} {
		require.NoError(t, s.Finish(ctx, id, exe.JobDone, ""))
	}
	list := func() []string {
		ids, err := s.List(ctx)
		require.NoError(t, err)
		return ids
	}
	assert.Equal(t, []string{"run", "c", "b", "a"}, list())
	require.NoError(t, s.Append(ctx, "run", out))
	assert.Equal(t, []string{"run", "c", "a"}, list(), "b finished first")
	require.NoError(t, s.Append(ctx, "run", out))
	assert.Equal(t, []string{"run", "a"}, list(), "then c")
	assert.LessOrEqual(t, s.Bytes(), int64(5*mib))
}

// A running job's events are never dropped, even past the budget; while
// running jobs alone hold more than the budget, new jobs are refused with
// ErrBusy (503), and once they finish they make room.
func TestRunningJobsKeepEveryEvent(t *testing.T) {
	ctx := context.Background()
	const mib = 1 << 20
	s := memory.New(memory.Options{MaxBytes: 2 * mib})
	require.NoError(t, s.Create(ctx, &exe.Job{JID: "big", Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"h"}}}))
	for i := 0; i < 6; i++ {
		require.NoError(t, s.Append(ctx, "big", exe.Event{Host: "h" + strconv.Itoa(i), Status: exe.HostChanged,
			Exec: &exe.ExecResult{Stdout: strings.Repeat("x", mib)}}))
	}
	job, err := s.Get(ctx, "big", true)
	require.NoError(t, err)
	assert.Len(t, job.ReturnData, 6, "every event of the running job is kept")
	assert.Greater(t, s.Bytes(), int64(6*mib))

	err = s.Create(ctx, &exe.Job{JID: "next", Request: exe.Request{Operate: exe.OpPing, Targets: []string{"h"}}})
	assert.ErrorIs(t, err, exe.ErrBusy)
	assert.EqualError(t, err, "job store full: running jobs hold 6 MiB of output, over its budget of 2 MiB")

	require.NoError(t, s.Finish(ctx, "big", exe.JobDone, ""))
	job, err = s.Get(ctx, "big", true)
	require.NoError(t, err)
	assert.Len(t, job.ReturnData, 6, "a finished job stays until room is needed")
	require.NoError(t, s.Create(ctx, &exe.Job{JID: "next", Request: exe.Request{Operate: exe.OpPing, Targets: []string{"h"}}}))
	_, err = s.Get(ctx, "big", false)
	assert.ErrorIs(t, err, exe.ErrNotFound, "the finished job made room")
}

// A job deleted and created again under the same jid is not dropped when
// the first one's retention ends, nor by the budget in its place.
func TestRecreatedJobKeepsItsOwnRetention(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := memory.New(memory.Options{Retention: time.Hour, Now: clock.Now})
	mk := &exe.Job{JID: "j", Request: exe.Request{Operate: exe.OpPing, Targets: []string{"h"}}}
	require.NoError(t, s.Create(ctx, mk))
	require.NoError(t, s.Finish(ctx, "j", exe.JobDone, ""))
	require.NoError(t, s.Delete(ctx, "j"))
	require.NoError(t, s.Create(ctx, mk))
	clock.now = clock.now.Add(2 * time.Hour)
	job, err := s.Get(ctx, "j", false)
	require.NoError(t, err, "the running job of that jid is another one")
	assert.Equal(t, exe.JobRunning, job.State)
}

// memTotal reads MemTotal from /proc/meminfo, in bytes.
func memTotal(t *testing.T) int64 {
	f, err := os.Open("/proc/meminfo")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

// The default budget is an eighth of the memory the process may use: no
// more than an eighth of MemTotal (less under a cgroup limit), and at
// least 64 MiB.
func TestDefaultMaxBytes(t *testing.T) {
	d := memory.DefaultMaxBytes()
	assert.GreaterOrEqual(t, d, int64(64<<20))
	if runtime.GOOS == "linux" {
		assert.LessOrEqual(t, d, max(memTotal(t)/8, 64<<20))
	}
	assert.Equal(t, d, memory.New(memory.Options{}).MaxBytes())
	assert.Negative(t, memory.New(memory.Options{MaxBytes: -1}).MaxBytes(), "negative: no budget")
}
