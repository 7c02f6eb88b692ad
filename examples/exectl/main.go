package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/0ops/exed/client"
	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitOK          = 0   // every host ended OK, CHANGED or SKIPPED
	exitError       = 1   // a usage error, or the API refused or could not be reached
	exitHostsFailed = 2   // the job ended Failure: some host FAILED or UNREACHABLE
	exitInterrupted = 130 // a second Ctrl-C left the job running (128 + SIGINT)
)

// defaultURL is where exed listens by default (README, Running the server).
const defaultURL = "http://127.0.0.1:16808"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitStatus ends a command with a status after it has said why (or
// needs to say nothing more: the hosts' output shows it).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a command line that does not make sense.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app holds what every command shares: the global flags, the API client
// and how output is written.
type app struct {
	url, token           string
	caFile, cert, key    string
	json                 bool
	stdout, stderr       io.Writer
	stdoutTTY, stderrTTY bool
	color                bool
	width                func() int
	client               *client.Client
}

func run(ctx context.Context, args []string, stdout, stderr *os.File) int {
	a := &app{stdout: stdout, stderr: stderr,
		stdoutTTY: isTerminal(stdout), stderrTTY: isTerminal(stderr),
		width: func() int { return terminalWidth(stdout) }}
	// Colours only on a terminal, and never with NO_COLOR set
	// (no-color.org: present and not empty).
	a.color = a.stdoutTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	fmt.Fprintf(stderr, "exectl: %s\n", describe(err, a.url))
	var usage usageError
	if errors.As(err, &usage) || isCobraUsage(err) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return exitError
}

// isCobraUsage tells cobra's own errors about the command line (unknown
// command or flag), which it returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "required flag")
}

// describe says what went wrong in the terms of the command line: the
// API's message and status, or why exed could not be reached.
func describe(err error, base string) string {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("%s (HTTP %d)", apiErr.Message, apiErr.StatusCode)
	}
	var urlErr *url.Error
	var opErr *net.OpError
	if errors.As(err, &urlErr) && errors.As(err, &opErr) {
		return fmt.Sprintf("cannot reach exed at %s: %v (set --url or EXED_URL)", base, opErr.Err)
	}
	return err.Error()
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "exectl",
		Short: "Run, follow and manage exed jobs",
		Long: `exectl runs operations on hosts through exed's HTTP API and shows each
host's result as it finishes, in the shape Ansible's ad-hoc commands use.

The server is --url (or EXED_URL, default ` + defaultURL + `), with the bearer
token --token (or EXED_TOKEN) when it has tokens; --ca-file, --cert and
--key (EXED_CA_FILE, EXED_CERT, EXED_KEY) for HTTPS and mutual TLS.

Exit status: 0 every host ok, 2 some host FAILED or UNREACHABLE (the job
ended Failure), 1 a usage error or an error of the API, 130 Ctrl-C twice.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.connect,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.url, "url", "", "exed's base URL, path prefix included (default $EXED_URL, else "+defaultURL+")")
	f.StringVar(&a.token, "token", "", "bearer token (default $EXED_TOKEN)")
	f.StringVar(&a.caFile, "ca-file", "", "PEM file of the CA that signed the server's certificate (default $EXED_CA_FILE)")
	f.StringVar(&a.cert, "cert", "", "client certificate (PEM) for mutual TLS (default $EXED_CERT)")
	f.StringVar(&a.key, "key", "", "key of the client certificate (PEM) (default $EXED_KEY)")
	f.BoolVar(&a.json, "json", false, "print JSON lines (NDJSON) for scripts: the API's own objects, one per line")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddGroup(&cobra.Group{ID: "run", Title: "Run on hosts:"}, &cobra.Group{ID: "jobs", Title: "Jobs:"})
	root.AddCommand(a.hostsCommand(), a.pingCommand(), a.factsCommand(), a.runCommand(), a.serviceCommand(),
		a.deployCommand(), a.taskCommand(), a.tasksCommand(),
		a.jobsCommand(), a.jobCommand(), a.cancelCommand(), a.deleteCommand())
	root.SetHelpCommandGroupID("")
	root.SetCompletionCommandGroupID("")
	return root
}

// connect builds the API client from the flags and the environment.
func (a *app) connect(cmd *cobra.Command, _ []string) error {
	a.url = cmp.Or(a.url, os.Getenv("EXED_URL"), defaultURL)
	a.token = cmp.Or(a.token, os.Getenv("EXED_TOKEN"))
	a.caFile = cmp.Or(a.caFile, os.Getenv("EXED_CA_FILE"))
	a.cert = cmp.Or(a.cert, os.Getenv("EXED_CERT"))
	a.key = cmp.Or(a.key, os.Getenv("EXED_KEY"))
	opts := []client.Option{client.WithToken(a.token), client.WithUserAgent("exectl")}
	if a.caFile != "" {
		opts = append(opts, client.WithCAFile(a.caFile))
	}
	switch {
	case a.cert != "" && a.key != "":
		opts = append(opts, client.WithClientCert(a.cert, a.key))
	case a.cert != "" || a.key != "":
		return usagef("--cert and --key go together")
	}
	c, err := client.New(a.url, opts...)
	if err != nil {
		return usageError{err}
	}
	a.client = c
	return nil
}
