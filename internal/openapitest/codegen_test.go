package openapitest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/require"

	// The one module a client that oapi-codegen generates imports. Kept
	// in go.mod and go.sum by this import (and so in the module cache
	// once these tests build), so that the generated client builds below
	// with the versions exed pins.
	_ "github.com/oapi-codegen/runtime"
)

// A Go client generated from the document by a standard generator
// (oapi-codegen, pinned as a tool in go.mod) builds: the document is one
// that tools read, not only kin-openapi. The client is generated into a
// module of its own in a temporary directory and compiled there, with
// the versions and hashes of exed's go.sum.
func TestGeneratedClientBuilds(t *testing.T) {
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command")
	root := moduleRoot(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "openapi.json")
	require.NoError(t, os.WriteFile(spec, exehttp.OpenAPI(), 0o644))

	gen := exec.Command(goBin, "tool", "oapi-codegen", "-generate", "types,client", "-package", "exedclient",
		"-o", filepath.Join(dir, "client.gen.go"), spec)
	gen.Dir = root
	out, err := gen.CombinedOutput()
	require.NoError(t, err, "oapi-codegen: %s", out)

	// The client's module requires the runtime exed's go.mod pins.
	out, err = exec.Command(goBin, "list", "-m", "-f", "{{.Version}}", "github.com/oapi-codegen/runtime").Output()
	require.NoError(t, err, "go.mod requires github.com/oapi-codegen/runtime")
	version := strings.TrimSpace(string(out))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"),
		[]byte("module exedclient\n\ngo 1.26\n\nrequire github.com/oapi-codegen/runtime "+version+"\n"), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))

	build := exec.Command(goBin, "build", "./...")
	build.Dir = dir
	// The module proxy stays on: the client's module graph is not pruned
	// as exed's is, so it needs go.mod files of modules exed's build never
	// downloads (github.com/RaveNoX/go-jsoncommentstrip, a dependency of
	// the runtime's); the go.sum copied from exed's verifies them.
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err = build.CombinedOutput()
	require.NoError(t, err, "the generated client does not build: %s", out)

	// It has a method per operation of the document.
	client, err := os.ReadFile(filepath.Join(dir, "client.gen.go"))
	require.NoError(t, err)
	doc, err := Load()
	require.NoError(t, err)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			id := strings.ToUpper(op.OperationID[:1]) + op.OperationID[1:]
			require.Contains(t, string(client), "func (c *Client) "+id+"(", "%s %s", method, path)
		}
	}
}

// moduleRoot is the directory of exed's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	gomod := strings.TrimSpace(string(out))
	require.NotEmpty(t, gomod, "tests run inside exed's module")
	return filepath.Dir(gomod)
}
