// Package debugpprof serves Go's profiles (net/http/pprof) from every exed
// process when the environment asks for it, for profiling under load:
// the server, each `exed worker` and each plugin process exed starts
// (they inherit the environment).
//
// With EXED_PPROF_DIR set to a directory, each process listens on a free
// port of 127.0.0.1, serves /debug/pprof/ there, and writes the address to
// DIR/NAME-PID.addr (NAME: exed, exed-worker, or plugin-KIND-NAME).
// EXED_PPROF_RATE (default 0: off) turns on the block and mutex profiles
// with that rate (runtime.SetBlockProfileRate, SetMutexProfileFraction).
// Without EXED_PPROF_DIR nothing is served and nothing changes.
package debugpprof

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// Env names the directory variable; RateEnv the block and mutex rate.
const (
	Env     = "EXED_PPROF_DIR"
	RateEnv = "EXED_PPROF_RATE"
)

// Start serves the profiles of this process, named name, when Env is
// set. It returns the address served ("" when off) and an error when Env
// is set but the address cannot be served or written.
func Start(name string) (string, error) {
	dir := os.Getenv(Env)
	if dir == "" {
		return "", nil
	}
	if r := os.Getenv(RateEnv); r != "" {
		rate, err := strconv.Atoi(r)
		if err != nil || rate < 0 {
			return "", fmt.Errorf("%s=%q: want a whole number, 0 or more", RateEnv, r)
		}
		runtime.SetBlockProfileRate(rate)
		runtime.SetMutexProfileFraction(rate)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: %w", Env, err)
	}
	addr := ln.Addr().String()
	path := filepath.Join(dir, name+"-"+strconv.Itoa(os.Getpid())+".addr")
	if err := os.WriteFile(path, []byte(addr+"\n"), 0o644); err != nil {
		ln.Close()
		return "", fmt.Errorf("%s: %w", Env, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.Serve(ln, mux) }()
	return addr, nil
}
