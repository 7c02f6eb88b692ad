package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with what exectl prints")

// What changes from run to run is written as a placeholder: job IDs
// (numbered in order of appearance), wall-clock times, Unix times.
var (
	jidRE      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	clockRE    = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	unixTimeRE = regexp.MustCompile(`"(startat|endat)":[1-9]\d*`)
	runningRE  = regexp.MustCompile(`"state":[01]`)
)

func normalise(s string, jids map[string]string) string {
	s = jidRE.ReplaceAllStringFunc(s, func(jid string) string {
		if _, ok := jids[jid]; !ok {
			// As long as a job ID, so that columns stay aligned.
			jids[jid] = fmt.Sprintf("jid00000-0000-0000-0000-%012d", len(jids)+1)
		}
		return jids[jid]
	})
	s = clockRE.ReplaceAllString(s, "<TIME>")
	return unixTimeRE.ReplaceAllString(s, `"$1":<T>`)
}

// golden compares a run's output, normalised, with testdata/name.golden
// (rewritten with -update).
func golden(t *testing.T, name string, args []string, r result, jids map[string]string) {
	t.Helper()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if strings.ContainsAny(a, " *'\"$;|&<>{}[]") || a == "" {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	stdout := normalise(r.stdout, jids)
	if first, rest, ok := strings.Cut(stdout, "\n"); ok && strings.HasPrefix(first, `{"jid":`) && strings.Contains(rest, "\n{") {
		// The first line of a followed job is the job as it stood when the
		// follow began: queued, running or already done.
		first = runningRE.ReplaceAllString(first, `"state":<S>`)
		stdout = strings.Replace(first, `"endat":0`, `"endat":<T>`, 1) + "\n" + rest
	}
	got := fmt.Sprintf("$ exectl %s\n--- stdout\n%s--- stderr\n%s--- exit %d\n",
		normalise(strings.Join(quoted, " "), jids), stdout, normalise(r.stderr, jids), r.code)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run the test with -update to write it")
	assert.Equal(t, string(want), got, "%s (run with -update to accept a change)", path)
}

// Off a terminal, exectl prints plain lines (no progress line, no
// colours, even with a colour-capable TERM), each host's result as
// Ansible's ad-hoc commands do, and exits 0, 2 or 1. The runs go in order
// on one server, so that the job list and IDs are known.
func TestGoldenOffTerminal(t *testing.T) {
	s := startServer(t, "", "")
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "vars.yml"), []byte("port: 80\nenabled: yes\nname: !unsafe '{{ not a template }}'\n"), 0o644))
	jids := map[string]string{}
	env := []string{"TERM=xterm-256color"}
	var lastJID string
	cases := []struct {
		name string
		args []string
	}{
		{"hosts", []string{"hosts"}},
		{"hosts-pattern", []string{"hosts", "h*:!h2"}},
		{"hosts-json", []string{"--json", "hosts", "all"}},
		{"ping", []string{"ping", "*"}},
		{"ping-json", []string{"ping", "h1", "--json"}},
		{"run", []string{"run", "h*", "--", "echo", "hello;", "echo", "warning", ">&2"}},
		{"run-args", []string{"run", "h2", "-a", "printf '%s\\n' a b"}},
		{"run-failed", []string{"run", "h1,down", "--", "echo out; echo err >&2; exit 3"}},
		// -f 2 is sent as forks, which the server lowers to its concurrency (1).
		{"run-json", []string{"--json", "run", "h1", "--timeout", "90s", "-f", "2", "--", "echo hi"}},
		{"job", nil}, // the last job, by its ID
		{"job-json", nil},
		{"service-usage", []string{"service", "h1", "nginx", "--state", "bogus"}},
		{"service-no-state", []string{"service", "h1", "nginx"}},
		{"deploy", []string{"deploy", "web", "h*", "-e", "@vars.yml", "-e", "port=8080 name='two words'"}},
		{"deploy-tags", []string{"deploy", "web", "h1", "-t", "conf", "-e", `{"list": [1, "b"], "port": 1}`}},
		{"deploy-failed", []string{"deploy", "web", "h*", "--tags", "conf,broken"}},
		{"deploy-unknown-role", []string{"deploy", "nope", "h1"}},
		{"tasks", []string{"tasks"}},
		{"task", []string{"task", "pingwave", "h*", "--opt", "wave=2"}},
		{"task-failed", []string{"task", "pingwave", "*", "--opt", "wave=1"}},
		{"task-bad-option", []string{"task", "pingwave", "h1", "--opt", "wave=two"}},
		{"task-unknown", []string{"task", "nope", "h1"}},
		{"jobs", []string{"jobs"}},
		{"cancel-finished", nil},
		{"no-match", []string{"ping", "nomatch*"}},
		{"unknown-job", []string{"job", "00000000-0000-0000-0000-000000000000"}},
		{"run-no-command", []string{"run", "h1"}},
		{"run-forks", []string{"run", "h1", "-f", "0", "--", "true"}},
		{"run-become", []string{"run", "h1", "--become", "--", "true"}},
		{"run-bad-timeout", []string{"run", "h1", "--timeout", "soon", "--", "true"}},
		{"missing-pattern", []string{"ping"}},
		{"unknown-command", []string{"pong", "h1"}},
		{"unknown-flag", []string{"ping", "--nope", "h1"}},
		{"extra-vars-file-without-at", []string{"deploy", "web", "h1", "-e", "./vars.yml"}},
		{"extra-vars-missing-file", []string{"deploy", "web", "h1", "-e", "@nope.yml"}},
		{"extra-vars-not-kv", []string{"deploy", "web", "h1", "-e", "port"}},
		{"bad-url", []string{"--url", "ftp://example", "hosts"}},
		{"unreachable-server", []string{"--url", "http://127.0.0.1:1", "hosts"}},
	}
	for _, c := range cases {
		args := c.args
		switch c.name {
		case "job":
			args = []string{"job", lastJID}
		case "job-json":
			args = []string{"--json", "job", lastJID}
		case "cancel-finished":
			args = []string{"cancel", lastJID}
		}
		r := s.exectl(t, env, args...)
		assert.NotContains(t, r.stdout+r.stderr, "\x1b", "%s: no escape sequences off a terminal", c.name)
		golden(t, c.name, args, r, jids)
		if c.name == "run-json" {
			var job struct {
				JID string `json:"jid"`
			}
			require.NoError(t, json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &job), r.stdout)
			lastJID = job.JID
		}
	}
}
