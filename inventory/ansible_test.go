package inventory_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ansibleListHosts asks the real ansible which hosts a pattern selects.
func ansibleListHosts(t *testing.T, ansible, invPath, pattern string) []string {
	t.Helper()
	cmd := exec.Command(ansible, "-i", invPath, "--list-hosts", "--", pattern)
	cmd.Env = append(os.Environ(), "ANSIBLE_LOCALHOST_WARNING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ansible --list-hosts %q: %v\n%s", pattern, err, stderr.String())
	}
	var hosts []string
	sc := bufio.NewScanner(&stdout)
	listing := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "hosts (") {
			listing = true
			continue
		}
		if listing && line != "" {
			hosts = append(hosts, line)
		}
	}
	sort.Strings(hosts)
	if hosts == nil {
		hosts = []string{}
	}
	return hosts
}

// TestMatchesAnsible checks our pattern semantics against ansible's own
// --list-hosts on the same inventory.
func TestMatchesAnsible(t *testing.T) {
	ansible := testenv.NeedBinary(t, "ansible")
	invPath := filepath.Join(t.TempDir(), "hosts.ini")
	require.NoError(t, os.WriteFile(invPath, []byte(sample), 0o600))
	inv, err := inventory.Load(invPath)
	require.NoError(t, err)

	patterns := []string{
		"all", "*", "web", "web*", "web*:&prod:!web03*", "web*:&prod:!web03.example.com", "web:&staging",
		"!web:db", "db,staging", "prod:!web", "~db-[ab]", "~web0[12]", "web0?.example.com",
		"web0[!13].example.com", "ungrouped", "localhost", "localhost:jump", "stage3", "&staging",
		"all:!localhost", "*.example.com", "~.*extra", "prod", "nothere",
	}
	got := make([][]string, len(patterns))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, p := range patterns {
		wg.Add(1)
		go func(i int, p string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			got[i] = ansibleListHosts(t, ansible, invPath, p)
		}(i, p)
	}
	wg.Wait()
	for i, p := range patterns {
		ours, err := inv.Match(p)
		require.NoError(t, err, p)
		assert.Equal(t, got[i], ours, "pattern %q: ansible selects %v", p, got[i])
	}
}
