package exe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// Inventories of the alias tests. Every host has a local connection, so
// that Ansible and exed run the same commands on this machine.
const (
	// implicitLocalhost lists no localhost-like host: localhost,
	// 127.0.0.1 and ::1 name the implicit localhost, which takes the
	// first of its names a pattern uses.
	implicitLocalhost = "[web]\nweb[01:04] ansible_connection=local\n[boxes]\nsshbox ansible_connection=local\n[db]\ndb1 ansible_connection=local\n"
	// listedLocalhost lists localhost: 127.0.0.1 and ::1 name it.
	listedLocalhost = "[web]\nweb[01:02] ansible_connection=local\n[local]\nlocalhost ansible_connection=local\n"
)

// aliasEngine is an Engine on the sshnative executor with the inventory
// text, written to a file (returned) that Ansible reads too.
func aliasEngine(t *testing.T, text string, roles string) (*exe.Engine, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hosts.ini")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	inv, err := inventory.Options{}.Load(path)
	require.NoError(t, err)
	x, err := sshnative.New(sshnative.Config{Inventory: inv, Roles: roles})
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	eng, err := exe.NewEngine(exe.Config{Store: memory.New(memory.Options{}), Executor: x, SyncTimeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	return eng, path
}

// appendOnce is a command that appends a line to log each time it runs.
func appendOnce(log string) string { return "echo ran >> " + log }

// lines counts the lines of a file ("" when it is missing: no run).
func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), "\n")
}

func keys(m map[string]exe.Event) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ansibleRun runs an ansible command with the inventory in a scratch
// directory: an empty ansible.cfg and none of the caller's ANSIBLE_*
// settings. It returns stdout.
func ansibleRun(t *testing.T, args ...string) []byte {
	t.Helper()
	testenv.NeedBinary(t, "ansible")
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "ansible.cfg"), nil, 0o600))
	c := exec.Command("ansible", args...)
	c.Dir = work
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANSIBLE_") {
			c.Env = append(c.Env, kv)
		}
	}
	c.Env = append(c.Env, "ANSIBLE_CONFIG="+filepath.Join(work, "ansible.cfg"), "ANSIBLE_HOME="+filepath.Join(work, "home"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp"), "ANSIBLE_LOCALHOST_WARNING=False", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=1", "ANSIBLE_STDOUT_CALLBACK=json")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	require.NoError(t, c.Run(), "ansible %v: %s%s", args, stderr.String(), stdout.String())
	return stdout.Bytes()
}

// ansibleHosts is what "ansible -i INVENTORY PATTERN --list-hosts" lists,
// in its order.
func ansibleHosts(t *testing.T, inv, pattern string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(string(ansibleRun(t, "-i", inv, pattern, "--list-hosts")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "hosts (") {
			out = append(out, l)
		}
	}
	return out
}

// ansibleRaw runs cmd with the raw module on the hosts pattern selects and
// returns the names its results are keyed by, sorted.
func ansibleRaw(t *testing.T, inv, pattern, cmd string) []string {
	t.Helper()
	var res struct {
		Stats map[string]json.RawMessage `json:"stats"`
	}
	out := ansibleRun(t, "-i", inv, pattern, "-m", "raw", "-a", cmd)
	require.NoError(t, json.Unmarshal(out, &res), "%s", out)
	names := make([]string, 0, len(res.Stats))
	for h := range res.Stats {
		names = append(names, h)
	}
	sort.Strings(names)
	return names
}

// TestTargetsNamingAHostTwiceAsAnsible names hosts by several of their
// names (localhost, 127.0.0.1, ::1), with and without a listed localhost,
// and compares with Ansible run on the same inventory and the same
// targets: the hosts (in order) that "ansible TARGETS --list-hosts"
// lists are the job's Targets and the keys of a sync answer, and the
// command runs as many times (once per host) under exed as under Ansible.
func TestTargetsNamingAHostTwiceAsAnsible(t *testing.T) {
	for _, c := range []struct {
		name, inv string
		targets   []string
	}{
		{"implicit alone", implicitLocalhost, []string{"127.0.0.1"}},
		{"implicit twice", implicitLocalhost, []string{"localhost", "127.0.0.1"}},
		{"implicit twice, other order", implicitLocalhost, []string{"127.0.0.1", "localhost"}},
		{"implicit three names among hosts", implicitLocalhost, []string{"sshbox", "127.0.0.1", "localhost"}},
		{"implicit every name", implicitLocalhost, []string{"::1", "web02", "localhost", "web01", "127.0.0.1", "web02"}},
		{"listed by another name", listedLocalhost, []string{"127.0.0.1"}},
		{"listed by every name", listedLocalhost, []string{"::1", "web01", "127.0.0.1", "localhost"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			eng, inv := aliasEngine(t, c.inv, "")
			ctx := context.Background()
			pattern := strings.Join(c.targets, ",")
			want := ansibleHosts(t, inv, pattern)
			sorted := append([]string(nil), want...)
			sort.Strings(sorted)

			dir := t.TempDir()
			theirLog, ourLog, jobLog := filepath.Join(dir, "ansible"), filepath.Join(dir, "sync"), filepath.Join(dir, "job")
			assert.Equal(t, sorted, ansibleRaw(t, inv, pattern, appendOnce(theirLog)), "ansible's results")
			assert.Equal(t, len(want), lines(t, theirLog), "ansible runs once per host")

			out, err := eng.RunSync(ctx, exe.Request{Operate: exe.OpExecute, Targets: c.targets, Execute: exe.ExecuteArgs{Cmd: appendOnce(ourLog)}})
			require.NoError(t, err)
			assert.Equal(t, sorted, keys(out), "a sync answer is keyed as Ansible's results")
			for h, ev := range out {
				assert.Equal(t, exe.HostChanged, ev.Status, "%s: %+v", h, ev)
				assert.Equal(t, h, ev.Host)
			}
			assert.Equal(t, len(want), lines(t, ourLog), "one run per host, as Ansible")

			jid, err := eng.Submit(ctx, exe.Request{Operate: exe.OpExecute, Targets: c.targets, Execute: exe.ExecuteArgs{Cmd: appendOnce(jobLog)}})
			require.NoError(t, err)
			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var hosts []string
			job, err := eng.Follow(fctx, jid, func(ev exe.Event) error { hosts = append(hosts, ev.Host); return nil })
			require.NoError(t, err)
			assert.Equal(t, want, job.Targets, "the job's targets are Ansible's hosts, in its order")
			assert.Equal(t, exe.JobDone, job.State, job.Error)
			sort.Strings(hosts)
			assert.Equal(t, sorted, hosts, "one event per host")
			assert.Equal(t, len(want), lines(t, jobLog))
		})
	}
}

// TestAliasesAreLocalhostsOnly: only Ansible's names of localhost name a
// host of another name. A group's name is no target, even a group of one
// host, and a name of no host is refused alone, whatever else the
// request names.
func TestAliasesAreLocalhostsOnly(t *testing.T) {
	eng, _ := aliasEngine(t, implicitLocalhost, "")
	ctx := context.Background()
	for targets, missing := range map[*[]string]string{
		{"db"}:                              "db",
		{"web"}:                             "web",
		{"db1", "db"}:                       "db",
		{"localhost", "ghost", "127.0.0.1"}: "ghost",
		{"127.0.0.1", "ghost", "::2"}:       "::2, ghost",
	} {
		_, err := eng.RunSync(ctx, exe.Request{Operate: exe.OpPing, Targets: *targets})
		assert.EqualError(t, err, "no hosts match that target: "+missing, "%v", *targets)
		_, err = eng.Submit(ctx, exe.Request{Operate: exe.OpPing, Targets: *targets})
		assert.EqualError(t, err, "no hosts match that target: "+missing, "%v", *targets)
	}
}

// TestLocalhostNamesTakeOneLock: deploys are mutex per host, and the
// implicit localhost is one host whichever of its names a deploy gives: a
// deploy naming it thrice takes one lock, on one host, and a second
// deploy on any of its names conflicts with it until it ends.
func TestLocalhostNamesTakeOneLock(t *testing.T) {
	roles := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(roles, "wait"), 0o755))
	// It waits for its job's cancel.
	require.NoError(t, os.WriteFile(filepath.Join(roles, "wait", "main.sh"), []byte("exec sleep 600\n"), 0o755))
	eng, _ := aliasEngine(t, implicitLocalhost, roles)
	ctx := context.Background()
	deploy := func(targets ...string) exe.Request {
		return exe.Request{Operate: exe.OpDeploy, Targets: targets, Deploy: exe.DeployArgs{Role: "wait"}}
	}
	jid, err := eng.Submit(ctx, deploy("localhost", "127.0.0.1", "::1"))
	require.NoError(t, err)
	job, err := eng.Job(ctx, jid, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"localhost"}, job.Targets)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		_, err := eng.Submit(ctx, deploy("web01", name))
		var ce *exe.ConflictError
		require.ErrorAs(t, err, &ce, name)
		assert.Equal(t, exe.ConflictError{Host: name, JID: jid}, *ce)
	}
	other, err := eng.Submit(ctx, deploy("web01"))
	require.NoError(t, err, "another host is free")
	_, err = eng.Cancel(ctx, jid)
	require.NoError(t, err)
	full, err := eng.Job(ctx, jid, true)
	require.NoError(t, err)
	var hosts []string
	for h := range full.ReturnData {
		if h != exe.AnnounceHost {
			hosts = append(hosts, h)
		}
	}
	assert.Equal(t, []string{"localhost"}, hosts, "one host")

	again, err := eng.Submit(ctx, deploy("::1"))
	require.NoError(t, err, "the lock is released")
	for _, j := range []string{again, other} {
		_, err = eng.Cancel(ctx, j)
		require.NoError(t, err)
	}
}
