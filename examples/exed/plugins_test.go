package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modulesDir builds the example plugins into a modules directory.
func modulesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "modules")
	for _, name := range []string{"exe-executor-localsh", "exe-task-pingwave"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../plugins/"+name).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	return dir
}

// pluginPID is the PID of the server's plugin process whose command line
// contains name.
func pluginPID(t *testing.T, server int, name string) int {
	t.Helper()
	for _, pid := range testenv.Children(t, server) {
		if strings.Contains(testenv.Cmdline(pid), name) {
			return pid
		}
	}
	t.Fatalf("no plugin process %q under exed %d", name, server)
	return 0
}

// submit posts an async request, follows the job to its end and returns
// it with its outputs.
func submit(t *testing.T, base, path, body string) map[string]any {
	t.Helper()
	var job map[string]any
	submitInto(t, base, path, body, &job)
	return job
}

// submitInto is submit decoding the job into job.
func submitInto(t *testing.T, base, path, body string, job any) {
	t.Helper()
	jid := post(t, base, path, body)
	code, _ := httpDo(t, "GET", base+"/jobs/"+jid+"?follow=1", "")
	require.Equal(t, 200, code)
	code, out := httpDo(t, "GET", base+"/jobs/"+jid+"?outputs=1", "")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(out, job))
}

func TestListPlugins(t *testing.T) {
	modules := modulesDir(t)
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[runner]\nmodules = %s\nexecutor = localsh\n", modules))
	require.NoError(t, os.WriteFile(filepath.Join(modules, "exe-executor-noexec"), []byte("#!/bin/sh\n"), 0o644))
	// A module named like a built-in overrides it.
	require.NoError(t, os.Link(filepath.Join(modules, "exe-executor-localsh"), filepath.Join(modules, "exe-executor-sshnative")))
	out, err := exec.Command(binary, "-c", conf, "--list-plugins").CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	assert.Regexp(t, `executor\s+localsh\s+`+regexpQuote(filepath.Join(modules, "exe-executor-localsh"))+` \(selected\)`, text)
	assert.Regexp(t, `executor\s+sshnative\s+`+regexpQuote(filepath.Join(modules, "exe-executor-sshnative")), text)
	assert.NotRegexp(t, `sshnative\s+built-in`, text)

	out, err = exec.Command(binary, "--list-plugins").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `executor\s+sshnative\s+built-in \(.*exed plugin executor sshnative\) \(selected\)`, string(out))
	assert.Regexp(t, `task\s+pingwave\s+`+regexpQuote(filepath.Join(modules, "exe-task-pingwave")), text)
	assert.Contains(t, text, "exe-executor-noexec ignored: not an executable file")
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(`.`, `\.`, `(`, `\(`, `)`, `\)`, `+`, `\+`)
	return r.Replace(s)
}

// The reference server on module plugins: every endpoint through plugin
// processes, a kill -9 of the executor mid-job, and no plugin left after
// the server exits.
func TestServerOnModulePlugins(t *testing.T) {
	modules := modulesDir(t)
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
[runner]
modules = %s
executor = localsh
shutdown_grace = 2s
[localsh]
hosts = web1, web2, db1
[nosuchplugin]
x = 1
`, freePort(t), modules))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	assert.Contains(t, p.logs.String(), "section [nosuchplugin] ignored: no plugin of that name")

	code, body := httpDo(t, "GET", base+"/target?pattern=web*", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `["web1","web2"]`, string(body))
	code, body = httpDo(t, "GET", base+"/ping?target=db1", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"db1":{"status":1}}`, string(body))
	// The plugin said up front what it does not do: refused at once, for
	// sync and async requests alike, with no job stored.
	code, body = httpDo(t, "POST", base+"/service", `{"targets":["db1"],"name":"nginx","state":0}`)
	assert.Equal(t, 501, code)
	assert.JSONEq(t, `{"message":"service is not supported by this executor"}`, string(body))
	code, body = httpDo(t, "GET", base+"/service?target=db1&name=nginx&state=0", "")
	assert.Equal(t, 501, code)
	assert.JSONEq(t, `{"message":"service is not supported by this executor"}`, string(body))
	code, body = httpDo(t, "POST", base+"/deploy", `{"targets":["db1"],"role":"web"}`)
	assert.Equal(t, 501, code, string(body))
	code, body = httpDo(t, "GET", base+"/jobs", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `[]`, string(body))
	var job map[string]any

	job = submit(t, base, "/execute", `{"targets":["web1","db1"],"cmd":"echo hi"}`)
	assert.EqualValues(t, 0, job["state"], "%v", job)
	rd := job["return_data"].(map[string]any)
	assert.Equal(t, "hi\n", rd["db1"].([]any)[0].(map[string]any)["stdout"])

	// Tasks: listed with their schema, validated before anything runs,
	// and run through the broker against the executor plugin.
	code, body = httpDo(t, "GET", base+"/tasks", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, string(body), `"type":"pingwave"`)
	code, body = httpDo(t, "POST", base+"/tasks", `{"targets":["web1"],"taskname":"t","tasktype":"pingwave","taskopts":{"wave":"x"}}`)
	assert.Equal(t, 400, code)
	assert.JSONEq(t, `{"message":"taskopts: option \"wave\" must be of type integer"}`, string(body))
	job = submit(t, base, "/tasks", `{"targets":["web1","web2","db1"],"taskname":"t","tasktype":"pingwave","taskopts":{"wave":2}}`)
	assert.EqualValues(t, 0, job["state"], "%v", job)
	assert.Len(t, job["return_data"].(map[string]any)["__ANNOUNCE__"], 2, "two waves")

	// kill -9 of the executor plugin during a long job fails that job with
	// a clear error; the next request starts a new plugin and succeeds.
	server := p.cmd.Process.Pid
	jid := post(t, base, "/execute", `{"targets":["web1"],"cmd":"sleep 60"}`)
	plugin := pluginPID(t, server, "exe-executor-localsh")
	require.Eventually(t, func() bool { return len(testenv.Children(t, plugin)) > 0 }, 10*time.Second, 5*time.Millisecond,
		"the plugin runs the command")
	require.NoError(t, syscall.Kill(plugin, syscall.SIGKILL))
	final := follow(t, base, jid)
	assert.EqualValues(t, 2, final["state"], "Failure")
	assert.Equal(t, "executor plugin localsh exited (signal: killed)", final["error"])
	code, body = httpDo(t, "GET", base+"/ping?target=web1", "")
	assert.Equal(t, 200, code, string(body))
	assert.JSONEq(t, `{"web1":{"status":1}}`, string(body))

	plugins := testenv.Children(t, server)
	require.Len(t, plugins, 3, "one executor and two task plugins (pingwave, built-in rollingrestart)")
	p.stop(t)
	for _, pid := range plugins {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "plugin %d (%s) outlived the server", pid, testenv.Cmdline(pid))
	}
}

func TestBadPluginConfigExits2(t *testing.T) {
	modules := modulesDir(t)
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[runner]\nmodules = %s\nexecutor = localsh\n[localsh]\nhots = x\n", modules))
	out, err := exec.Command(binary, "-c", conf).CombinedOutput()
	assert.Equal(t, 2, exitCode(t, err))
	assert.Contains(t, string(out), "executor plugin localsh: [localsh] hots: unknown option")
}

// The built-in ansible executor, chosen as in the seed, in its own process.
func TestAnsibleExecutorBuiltIn(t *testing.T) {
	_, err := exec.LookPath("ansible-playbook")
	testenv.Need(t, err == nil, "ansible (Debian package ansible)")
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	require.NoError(t, os.WriteFile(inv, []byte("loc ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"), 0o600))
	workdir, err := filepath.Abs("../../plugins/ansible/testdata")
	require.NoError(t, err)
	out := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf(`[api]
listen_port = %d
[runner]
executor = ansible
[ansible]
workdir = %s
inventory = %s
`, freePort(t), workdir, inv))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	code, body := httpDo(t, "GET", base+"/target?pattern=all", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `["loc"]`, string(body))
	code, body = httpDo(t, "GET", base+"/ping?target=loc", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"loc":{"status":1}}`, string(body))
	job := submit(t, base, "/deploy", fmt.Sprintf(`{"targets":["loc"],"role":"web","partial":["config"],"extra_vars":{"out_dir":%q,"port":1,"motd":"hi"}}`, out))
	assert.EqualValues(t, 0, job["state"], "%v", job)
	b, err := os.ReadFile(filepath.Join(out, "loc.conf"))
	require.NoError(t, err)
	assert.Equal(t, "port=1 motd=hi\n", string(b))
	_, before := httpDo(t, "GET", base+"/jobs", "")
	// Reserved variables are refused at submit, through the plugin
	// protocol, not by a job that fails after a 201.
	for name, req := range map[string]string{
		"ansible_become": `{"targets":["loc"],"role":"web","extra_vars":{"port":1,"ansible_become":true}}`,
		"_role":          `{"targets":["loc"],"role":"web","extra_vars":{"_role":"other"}}`,
	} {
		code, body = httpDo(t, "POST", base+"/deploy", req)
		assert.Equal(t, 400, code, string(body))
		var msg map[string]string
		require.NoError(t, json.Unmarshal(body, &msg))
		assert.Equal(t, map[string]string{"message": fmt.Sprintf("extra_vars: %q: names starting with ansible_ or _ are reserved", name)}, msg)
	}
	_, after := httpDo(t, "GET", base+"/jobs", "")
	assert.JSONEq(t, string(before), string(after), "nothing was stored")
	p.stop(t)
}

// The built-in rollingrestart task plugin, through the API.
func TestRollingRestartInTheAPI(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n", freePort(t)))
	p := start(t, dir, "-c", conf)
	base := "http://" + p.addr
	code, body := httpDo(t, "GET", base+"/tasks", "")
	require.Equal(t, 200, code)
	var tasks []map[string]any
	require.NoError(t, json.Unmarshal(body, &tasks))
	require.Len(t, tasks, 1)
	assert.Equal(t, "rollingrestart", tasks[0]["type"])
	props := tasks[0]["options"].(map[string]any)["properties"].(map[string]any)
	assert.Contains(t, props, "max_fail")

	code, body = httpDo(t, "POST", base+"/tasks", `{"targets":["localhost"],"taskname":"rr","tasktype":"rollingrestart","taskopts":{"service":"nginx","batch":"half"}}`)
	assert.Equal(t, 400, code)
	assert.JSONEq(t, `{"message":"taskopts: option \"batch\": \"half\" does not match ^[0-9]+%$"}`, string(body))
	code, body = httpDo(t, "GET", base+"/jobs", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `[]`, string(body), "nothing was stored")

	// A real run through the task plugin and the broker: the service does
	// not exist, so the first batch fails and the rest is skipped.
	job := submit(t, base, "/tasks", `{"targets":["localhost"],"taskname":"rr","tasktype":"rollingrestart","taskopts":{"service":"exe-no-such-service"}}`)
	assert.EqualValues(t, 2, job["state"])
	assert.Equal(t, "rollout stopped at batch 1/1: 1 hosts failed, max_fail is 0", job["error"])
	args := job["operate_args"].(map[string]any)
	assert.Equal(t, "rr", args["taskname"])
	assert.Equal(t, "rollingrestart", args["tasktype"])
	assert.EqualValues(t, 1, args["taskopts"].(map[string]any)["batch"], "defaults filled in")
	p.stop(t)
}
