package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/0ops/exed/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusComment is a README example's trailing comment, which starts with the
// status the command is answered with and may name others ("202 while
// running; 409 once finished").
var (
	statusComment = regexp.MustCompile(`\s#\s+([1-5]\d\d)\b(.*)$`)
	otherStatus   = regexp.MustCompile(`\b([1-5]\d\d)\b`)
)

// readmeCurls returns every curl command in the README's code blocks, with
// its line number; a console prompt ("$ ") is dropped.
func readmeCurls(t *testing.T, path string) (lines []string, at []int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	inBlock := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		line = strings.TrimPrefix(line, "$ ")
		if inBlock && strings.HasPrefix(line, "curl ") {
			lines, at = append(lines, line), append(at, n)
		}
	}
	require.NoError(t, sc.Err())
	return lines, at
}

// TestReadmeCurlExamples runs every curl example of the README, as written,
// against the built server, and checks the status its comment documents.
// Examples that do not run (a body curl sends as a form, a wrong path) fail
// here rather than for the first user who pastes them.
func TestReadmeCurlExamples(t *testing.T) {
	curl := testenv.NeedBinary(t, "curl")
	lines, at := readmeCurls(t, filepath.Join("..", "..", "README.md"))
	require.GreaterOrEqual(t, len(lines), 20, "the README's examples were not found")

	dir := t.TempDir()
	for _, f := range []string{"roles/nginx/main.sh", "roles/nginx/tags/reconfig.sh"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("echo reconfigured\n"), 0o755))
	}
	// curl reads $CURL_HOME/.curlrc: it prints the status after the body,
	// so the commands run exactly as the README writes them.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".curlrc"), []byte("write-out = \"\\n%{http_code}\"\n"), 0o600))
	conf := writeConf(t, dir, fmt.Sprintf("[api]\nlisten_port = %d\n", freePort(t)))
	p := start(t, dir, "-c", conf)
	E := "http://" + p.addr

	// $JID: a finished job, as a reader has after following one; a new one
	// for each example, since one of them deletes it.
	finishedJob := func() string {
		code, body := httpDo(t, "POST", E+"/execute", `{"targets":["localhost"],"cmd":"echo hi"}`)
		require.Equal(t, 201, code, string(body))
		var created map[string]string
		require.NoError(t, json.Unmarshal(body, &created))
		code, body = httpDo(t, "GET", E+"/jobs/"+created["jid"]+"?follow=1", "")
		require.Equal(t, 200, code, string(body))
		return created["jid"]
	}

	for i, line := range lines {
		m := statusComment.FindStringSubmatch(line)
		if !assert.NotNil(t, m, "README.md:%d: the comment must start with the status: %s", at[i], line) {
			continue
		}
		allowed := []string{m[1]}
		for _, s := range otherStatus.FindAllStringSubmatch(m[2], -1) {
			allowed = append(allowed, s[1])
		}
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "E="+E, "JID="+finishedJob(), "CURL_HOME="+dir, "PATH="+filepath.Dir(curl)+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		if !assert.NoError(t, err, "README.md:%d: %s", at[i], line) {
			continue
		}
		text := strings.TrimRight(string(out), "\n")
		status := text[strings.LastIndexByte(text, '\n')+1:]
		assert.Contains(t, allowed, status, "README.md:%d: %s\n%s", at[i], line, text)
	}
	p.stop(t)
}
