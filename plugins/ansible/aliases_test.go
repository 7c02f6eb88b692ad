package ansible_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/ansible"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTargetsNamingAHostTwice runs requests that name the implicit
// localhost by two of its names on an Engine whose executor is the ansible
// plugin (through the plugin protocol, as exed runs it): Ansible runs the
// command once on one host, named after the first of them, and the
// answer and the job name that host alone, as "ansible TARGETS" does.
func TestTargetsNamingAHostTwice(t *testing.T) {
	dir := t.TempDir()
	x := newExecutor(t, dir, "[web]\nweb[01:02] ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n", ansible.Config{Forks: 5})
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: executor.TestClient(t, x, nil),
		SyncTimeout: 2 * time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	ctx := context.Background()

	for i, c := range []struct{ targets, want []string }{
		{[]string{"localhost", "127.0.0.1"}, []string{"localhost"}},
		{[]string{"127.0.0.1", "web01", "localhost"}, []string{"127.0.0.1", "web01"}},
	} {
		sorted := append([]string(nil), c.want...)
		sort.Strings(sorted)
		log := filepath.Join(dir, "sync"+string(rune('0'+i)))
		out, err := eng.RunSync(ctx, exe.Request{Operate: exe.OpExecute, Targets: c.targets, Execute: exe.ExecuteArgs{Cmd: "echo ran >> " + log}})
		require.NoError(t, err, c.targets)
		var got []string
		for h, ev := range out {
			got = append(got, h)
			assert.Equal(t, exe.HostChanged, ev.Status, "%s: %+v", h, ev)
		}
		sort.Strings(got)
		assert.Equal(t, sorted, got, "%v", c.targets)
		assert.Equal(t, len(c.want), runs(t, log), "one run per host: %v", c.targets)

		log = filepath.Join(dir, "job"+string(rune('0'+i)))
		jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: c.targets, Execute: exe.ExecuteArgs{Cmd: "echo ran >> " + log}})
		require.NoError(t, err, c.targets)
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		job, err := eng.Follow(fctx, jid, func(exe.Event) error { return nil })
		cancel()
		require.NoError(t, err)
		assert.Equal(t, c.want, job.Targets)
		assert.Equal(t, exe.JobDone, job.State, job.Error)
		assert.Equal(t, len(c.want), runs(t, log), "one run per host: %v", c.targets)
	}
}

// runs counts the lines the commands appended to log.
func runs(t *testing.T, log string) int {
	t.Helper()
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	return strings.Count(string(b), "\n")
}
