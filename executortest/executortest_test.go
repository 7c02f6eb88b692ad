package executortest_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/executortest"
	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pinger pings hosts a and b; the cases below declare it in the ways an
// author gets wrong.
type pinger struct{ inv *inventory.Inventory }

func (p pinger) Match(_ context.Context, pattern string) ([]string, error) {
	return p.inv.Match(pattern)
}

func (pinger) Ping(_ context.Context, hosts []string, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostOK})
	}
	return nil
}

// unsupportedAlone embeds exe.Unsupported alone: it declares nothing, so
// every operation counts as declared.
type unsupportedAlone struct {
	exe.Unsupported
	pinger
}

func (x unsupportedAlone) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return x.pinger.Ping(ctx, hosts, emit)
}

// listedNotWritten lists facter in its exe.Only but does not write it.
type listedNotWritten struct {
	exe.Only
	pinger
}

func (x listedNotWritten) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return x.pinger.Ping(ctx, hosts, emit)
}

// writtenNotListed writes execute but leaves it out of its exe.Only.
type writtenNotListed struct{ listedNotWritten }

func (writtenNotListed) Execute(_ context.Context, hosts []string, _ exe.ExecuteArgs, emit exe.Emit) error {
	for _, h := range hosts {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{}})
	}
	return nil
}

// brokenCase is the executor of TestBrokenExecutor, by the name in
// $EXECUTORTEST_CASE.
func brokenCase(name string, inv *inventory.Inventory) exe.Executor {
	p := pinger{inv: inv}
	switch name {
	case "unsupported-alone":
		return unsupportedAlone{pinger: p}
	case "listed-not-written":
		return listedNotWritten{Only: exe.Only{exe.OpPing, exe.OpFacter}, pinger: p}
	case "written-not-listed":
		return writtenNotListed{listedNotWritten{Only: exe.Only{exe.OpPing}, pinger: p}}
	}
	return nil
}

// TestBrokenExecutor runs the suite on a wrongly declared executor, when
// TestFailuresSayWhatToDeclare starts this binary to read its failures.
func TestBrokenExecutor(t *testing.T) {
	name := os.Getenv("EXECUTORTEST_CASE")
	if name == "" {
		t.Skip("started by TestFailuresSayWhatToDeclare")
	}
	inv, err := inventory.Static("a", "b")
	require.NoError(t, err)
	x := brokenCase(name, inv)
	require.NotNil(t, x, name)
	executortest.Run(t, executortest.Options{Hosts: []string{"a", "b"}, New: func(*testing.T) exe.Executor { return x }})
}

// The suite fails an executor whose declaration does not match what it
// performs, and its failure says what to declare or to write.
func TestFailuresSayWhatToDeclare(t *testing.T) {
	for name, want := range map[string]string{
		"unsupported-alone":  "facter answers exe.ErrNotSupported (facter is not supported by this executor), yet executortest_test.unsupportedAlone has no exe.Capabilities, so every operation counts as declared: embed exe.Only listing the operations it performs (e.g. exe.Only{exe.OpPing, exe.OpExecute}), which also answers the others",
		"listed-not-written": "facter answers exe.ErrNotSupported (facter is not supported by this executor), yet executortest_test.listedNotWritten declares it (Supports): write Facter, or leave exe.OpFacter out of its exe.Only",
		"written-not-listed": "execute is not declared: want exe.ErrNotSupported, got <nil>: if executortest_test.writtenNotListed performs execute, list exe.OpExecute in its exe.Only",
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenExecutor$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "EXECUTORTEST_CASE="+name)
		out, err := cmd.CombinedOutput()
		assert.Error(t, err, "%s: the suite fails", name)
		assert.Contains(t, string(out), want, name)
	}
}
