// Package plugintest builds plugin binaries for tests: real processes that
// go-plugin starts, so crashes, restarts and shutdown are the real thing.
package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Build compiles each package (an import path of this module, e.g.
// "./internal/plugintest/testexec" relative to the module root) into dir
// under the name given, and returns the binaries' paths by name. Call it
// from TestMain.
func Build(dir string, pkgs map[string]string) (map[string]string, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, pkg := range pkgs {
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
		out[name] = bin
	}
	return out, nil
}

// Main builds pkgs (as Build does) into a temporary directory, sets *bins
// to their paths, runs the tests and removes the directory: a TestMain in
// one line.
func Main(m interface{ Run() int }, bins *map[string]string, pkgs map[string]string) {
	dir, err := os.MkdirTemp("", "exe-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bins, err = Build(dir, pkgs)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// moduleRoot is the directory of this module's go.mod.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("plugintest: cannot locate the module")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("plugintest: go.mod not found above %s", file)
		}
		dir = parent
	}
}
