package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// killAtEnd kills, when the test ends, the host processes it made exed
// start that may still run.
func killAtEnd(t *testing.T, pids ...int) {
	t.Cleanup(func() {
		for _, pid := range pids {
			if !testenv.Ended(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// orphanFleet is a server configuration with two hosts: localhost (a local
// connection) and "remote", a real sshd; pids is a directory both can write
// the PIDs of their commands to.
func orphanFleet(t *testing.T, dir string, extra string) (conf, pids string) {
	t.Helper()
	s := sshtest.Start(t, sshtest.Options{})
	pids = s.WritableDir(t)
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte(fmt.Sprintf("remote ansible_host=127.0.0.1 ansible_port=%d\n", s.Port)), 0o600))
	conf = writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
[runner]
%s
[sshnative]
inventory = %s
known_hosts = %s
private_key_file = %s
remote_user = %s
use_agent = false
`, freePort(t), extra, inv, s.KnownHosts, s.ClientKey, s.User))
	return conf, pids
}

// loopCmd is a command that outlives a hang-up: a nohup'd endless loop
// whose shell writes its pid to pidFile.
func loopCmd(pidFile string) string {
	return fmt.Sprintf(`nohup sh -c 'echo $$ > %s; while :; do sleep 1; done' >/dev/null 2>&1`, pidFile)
}

// loop is a command a test left running on a host: its job and the PID
// its loop wrote.
type loop struct {
	jid string
	pid int
}

// startLoops submits one job per host running loopCmd and returns them by
// host once every loop runs.
func startLoops(t *testing.T, base, pids, tag string) map[string]loop {
	t.Helper()
	loops := map[string]loop{}
	for _, host := range []string{"localhost", "remote"} {
		loops[host] = loop{jid: post(t, base, "/execute", fmt.Sprintf(`{"targets":[%q],"cmd":%q}`,
			host, loopCmd(filepath.Join(pids, tag+host))))}
	}
	for host, l := range loops {
		l.pid = testenv.WaitPIDFile(t, filepath.Join(pids, tag+host), 15*time.Second)
		killAtEnd(t, l.pid)
		loops[host] = l
	}
	return loops
}

// kill -9 of the executor plugin while its commands run (a nohup'd loop,
// locally and over SSH): the server starts the plugin again at once, with
// no request to prompt it, and the new plugin ends the commands the dead
// one left running; the hosts' events say the command may still run.
func TestPluginKillLeavesNoCommandRunning(t *testing.T) {
	dir := t.TempDir()
	conf, pids := orphanFleet(t, dir, "shutdown_grace = 1s")
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	loops := startLoops(t, base, pids, "")

	server := p.cmd.Process.Pid
	plugin := pluginPID(t, server, "plugin executor sshnative")
	require.NoError(t, syscall.Kill(plugin, syscall.SIGKILL))
	for host, l := range loops {
		follow(t, base, l.jid)
		code, out := httpDo(t, "GET", base+"/jobs/"+l.jid+"?outputs=1", "")
		require.Equal(t, 200, code)
		var job map[string]any
		require.NoError(t, json.Unmarshal(out, &job))
		assert.EqualValues(t, 2, job["state"], host)
		assert.Equal(t, "executor plugin sshnative exited (signal: killed)", job["error"], host)
		rd, _ := job["return_data"].(map[string]any)
		evs, _ := rd[host].([]any)
		if !assert.Len(t, evs, 1, "%s: its event", host) {
			continue
		}
		ev := evs[0].(map[string]any)
		assert.EqualValues(t, 3, ev["status"], "%s: FAILED", host)
		assert.Equal(t, "executor plugin sshnative exited (signal: killed); the remote command may still be running", ev["msg"], host)
	}
	require.Eventually(t, func() bool { return testenv.Ended(loops["localhost"].pid) && testenv.Ended(loops["remote"].pid) },
		30*time.Second, 20*time.Millisecond, "the restarted plugin ends the commands the dead one left running")
	again := pluginPID(t, server, "plugin executor sshnative")
	assert.NotEqual(t, plugin, again, "a new plugin process")
	p.stop(t)
}

// SIGTERM while commands run (nohup'd loops, locally and over SSH, an
// async job per host and, in the first run, a sync request): shutdown
// cancels the jobs, waits until their process groups have ended, and only
// then stops the plugin, so that when the server has exited, no command is
// left. Ten runs on one state directory.
func TestShutdownLeavesNoCommandRunning(t *testing.T) {
	dir := t.TempDir()
	conf, pids := orphanFleet(t, dir, "shutdown_grace = 100ms")
	for run := 0; run < 10; run++ {
		p := start(t, dir, "-c", conf)
		base := "http://" + p.addr
		tag := fmt.Sprintf("run%d-", run)
		loops := startLoops(t, base, pids, tag)
		if run == 0 {
			syncPID := filepath.Join(pids, tag+"sync")
			go func() {
				// Its answer does not matter: the server stops under it.
				res, err := http.Get(base + "/execute?target=remote&cmd=" + url.QueryEscape(loopCmd(syncPID)))
				if err == nil {
					res.Body.Close()
				}
			}()
			loops["sync"] = loop{pid: testenv.WaitPIDFile(t, syncPID, 15*time.Second)}
			killAtEnd(t, loops["sync"].pid)
		}
		p.stop(t)
		for name, l := range loops {
			assert.True(t, testenv.Ended(l.pid), "run %d: %s: command %d outlived the server", run, name, l.pid)
		}
	}
	journals, err := filepath.Glob(filepath.Join(dir, "state", "*", "run-*.journal"))
	require.NoError(t, err)
	assert.Empty(t, journals, "every command was ended and every journal closed")
}
