// Command exed is the reference exed server: the HTTP API of API.md on top
// of the exe Engine, configured by an INI file (exed.conf).
//
// With no configuration at all it serves the embedded default on
// 127.0.0.1:16808: an in-memory job store, the in-process dispatcher and the
// sshnative executor with localhost.
//
//	exed [-c exed.conf] [-d] [-v] [-h] [--list-plugins]
//	exed worker [-c exed.conf]
//
// Executors and task plugins run as plugin processes: module binaries
// exe-executor-NAME and exe-task-NAME in [runner] modules, and the
// built-ins, which exed serves itself (exed plugin executor sshnative).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/examples/exed/internal/debugpprof"
	"github.com/0ops/exed/loader"
)

// earlyHUPs holds the SIGHUPs that arrive before the server or worker
// has started (see run); startProcess takes it over.
var earlyHUPs chan os.Signal

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// Exit codes: 2 for bad usage or configuration, 1 for failures at run time.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func run(args []string, stdout, stderr io.Writer) int {
	if _, err := debugpprof.Start(processName(args)); err != nil {
		fmt.Fprintln(stderr, "exed:", err)
		return exitUsage
	}
	// exed starts itself as "exed plugin KIND NAME" to run a built-in
	// plugin in a process of its own: Serve serves it and exits.
	loader.Standard.Serve(args)
	// SIGHUP's default action ends the process: a reload asked for while
	// exed reads its configuration (systemctl reload, a log rotation, a
	// script that signals every exed) must not. It is taken first thing
	// and kept for the reload loop (startProcess), which then reloads.
	earlyHUPs = make(chan os.Signal, 1)
	signal.Notify(earlyHUPs, syscall.SIGHUP)
	worker := false
	if len(args) > 0 && args[0] == "worker" {
		worker, args = true, args[1:]
	}
	fs := flag.NewFlagSet("exed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var confPath string
	var daemon, showVersion, list bool
	fs.StringVar(&confPath, "c", "", "path to exed.conf (default: ./exed.conf if it exists, else built-in defaults)")
	fs.StringVar(&confPath, "conf", "", "same as -c")
	fs.BoolVar(&daemon, "d", false, "run as a daemon: detach, write [api] pid_file, log to [log] error_log (default: exed.log beside the pid file)")
	fs.BoolVar(&daemon, "daemon", false, "same as -d")
	fs.BoolVar(&showVersion, "v", false, "print the version and exit")
	fs.BoolVar(&showVersion, "version", false, "same as -v")
	fs.BoolVar(&list, "list-plugins", false, "print the executor and task plugins found (built-in and in [runner] modules) and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: exed [-c exed.conf] [-d] [-v] [-h] [--list-plugins]\n       exed worker [-c exed.conf]   (runs the jobs queued on [runner] broker_url)\n\nexed serves the exed remote-execution HTTP API.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "exed: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if showVersion {
		fmt.Fprintln(stdout, "exed", versionString())
		return 0
	}

	cfg := config.Default()
	if confPath == "" {
		if _, err := os.Stat("exed.conf"); err == nil {
			confPath = "exed.conf"
		}
	}
	var warnings []string
	if confPath != "" {
		var err error
		cfg, warnings, err = config.Load(confPath)
		if err != nil {
			fmt.Fprintln(stderr, "exed:", err)
			return exitUsage
		}
	}
	if list {
		listPlugins(cfg, stdout)
		return 0
	}
	if worker {
		return runWorker(cfg, warnings, stderr)
	}
	if daemon {
		// The parent and the daemon it starts agree on the log.
		logPath, err := daemonLog(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "exed:", err)
			return exitUsage
		}
		cfg.Log.ErrorLog = logPath
		if cfg.Log.Format == "json" && (cfg.Log.AccessLog == "" || cfg.Log.AccessLog == "-") {
			warnings = append(warnings, "-d: the access log goes to "+logPath+" among the JSON lines of the server log: set [log] access_log to keep them apart")
		}
		if os.Getenv(daemonEnv) == "" {
			return startDaemon(args, logPath, stdout, stderr)
		}
	}
	return serve(cfg, warnings, stdout, stderr)
}

// processName names this process for its profiles: exed, exed-worker or
// plugin-KIND-NAME.
func processName(args []string) string {
	switch {
	case len(args) >= 3 && args[0] == "plugin":
		return "plugin-" + args[1] + "-" + args[2]
	case len(args) > 0 && args[0] == "worker":
		return "exed-worker"
	}
	return "exed"
}
