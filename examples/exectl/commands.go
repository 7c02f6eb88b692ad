package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/spf13/cobra"
)

// positional checks a command's arguments against their names; optional
// ones are in brackets.
func positional(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		required := 0
		for _, n := range names {
			if !strings.HasPrefix(n, "[") {
				required++
			}
		}
		switch {
		case len(args) < required:
			return usagef("%s needs %s", cmd.Name(), strings.Join(names[len(args):required], " and "))
		case len(args) > len(names):
			return usagef("%s takes %s; unexpected: %s", cmd.Name(), strings.Join(names, " "), strings.Join(args[len(names):], " "))
		}
		return nil
	}
}

// hosts resolves an Ansible host pattern to the inventory's hosts (GET
// /target). A pattern that selects nothing is an error here: a run on no
// host would look like a success.
func (a *app) hosts(ctx context.Context, pattern string) ([]string, error) {
	hosts, err := a.client.Target(ctx, pattern)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no hosts match %q: nothing to do (exectl hosts PATTERN lists what a pattern selects)", pattern)
	}
	return hosts, nil
}

// jobFlags are the flags of every command that runs a job.
type jobFlags struct {
	timeout string
	forks   int
	become  bool
}

// jobOpts are what jobFlags ask of the server for a job.
type jobOpts struct {
	timeout time.Duration // 0: none
	forks   int           // hosts at once; 0: the server's concurrency
}

// add adds --timeout; -f/--forks where Ansible's command for it has it
// (ad-hoc commands and ansible-playbook, not tasks, which pace their
// hosts themselves); -b/--become, refused, to the ad-hoc commands.
func (f *jobFlags) add(cmd *cobra.Command, adhoc, forks bool) {
	cmd.Flags().StringVar(&f.timeout, "timeout", "", "stop the hosts not finished after this long (seconds, or a duration: 90s, 5m); the job ends Failure")
	if forks {
		cmd.Flags().IntVarP(&f.forks, "forks", "f", 0, "hosts worked on at once, as ansible -f (the server lowers a value above its [runner] concurrency; default: that concurrency)")
	}
	if adhoc {
		cmd.Flags().BoolVarP(&f.become, "become", "b", false, "not supported: set ansible_become for the hosts in the inventory")
	}
}

// check refuses the Ansible flags the API has no equivalent of, and
// reads --timeout and --forks.
func (f *jobFlags) check(cmd *cobra.Command) (jobOpts, error) {
	if cmd.Flags().Changed("become") {
		return jobOpts{}, usagef("-b/--become: exed's API takes no privilege escalation per request; set ansible_become (and ansible_become_user) for the hosts in the inventory, which exed's executors apply to every command")
	}
	if cmd.Flags().Changed("forks") && f.forks < 1 {
		return jobOpts{}, usagef("-f/--forks %d: give a positive number of hosts at once", f.forks)
	}
	opts := jobOpts{forks: f.forks}
	if f.timeout == "" {
		return opts, nil
	}
	if secs, err := strconv.ParseFloat(f.timeout, 64); err == nil && secs > 0 && secs <= exe.MaxTimeoutSeconds {
		opts.timeout = time.Duration(secs * float64(time.Second))
		return opts, nil
	}
	d, err := time.ParseDuration(f.timeout)
	if err != nil || d <= 0 {
		return jobOpts{}, usagef("--timeout %q: give seconds (30) or a duration (90s, 5m)", f.timeout)
	}
	opts.timeout = d
	return opts, nil
}

// submit resolves the pattern, submits req as a job on its hosts, with
// the server bounding its run by opts (timeout, forks), and follows it
// to its end.
func (a *app) submit(cmd *cobra.Command, pattern string, req exe.Request, opts jobOpts) error {
	ctx := cmd.Context()
	sigs, stop := interrupts()
	defer stop()
	hosts, err := a.hosts(ctx, pattern)
	if err != nil {
		return err
	}
	req.Targets, req.Timeout, req.Forks = hosts, opts.timeout, opts.forks
	start := time.Now()
	jid, err := a.client.Submit(ctx, req)
	if err != nil {
		return err
	}
	return a.watch(ctx, jid, start, sigs)
}

func (a *app) hostsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hosts [PATTERN]",
		Short: "List the hosts a pattern selects",
		Long: `List the inventory hosts that PATTERN selects (default "*"), with Ansible's
pattern rules: globs, groups, "a:b" unions, "a:&b" intersections, "a:!b"
exclusions, ~regex and subscripts (web[0:2]). As ansible --list-hosts
prints them; with --json, a JSON array.`,
		Example:           "  exectl hosts 'web*:!web3'",
		GroupID:           "run",
		Args:              positional("[PATTERN]"),
		ValidArgsFunction: a.completeHosts(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			pattern := "*"
			if len(args) > 0 {
				pattern = args[0]
			}
			hosts, err := a.client.Target(cmd.Context(), pattern)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(hosts)
			}
			fmt.Fprintf(a.stdout, "  hosts (%d):\n", len(hosts))
			for _, h := range hosts {
				fmt.Fprintf(a.stdout, "    %s\n", h)
			}
			return nil
		},
	}
}

func (a *app) pingCommand() *cobra.Command {
	var f jobFlags
	cmd := &cobra.Command{
		Use:   "ping PATTERN",
		Short: "Check that hosts answer",
		Long: `Ping the hosts PATTERN selects (a job, POST /ping) and show each host's
result as it finishes: "host | SUCCESS => {...}", or UNREACHABLE! with the
reason.`,
		Example:           "  exectl ping 'web*'",
		GroupID:           "run",
		Args:              positional("PATTERN"),
		ValidArgsFunction: a.completeHosts(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.check(cmd)
			if err != nil {
				return err
			}
			return a.submit(cmd, args[0], exe.Request{Operate: exe.OpPing}, opts)
		},
	}
	f.add(cmd, true, true)
	return cmd
}

func (a *app) factsCommand() *cobra.Command {
	var f jobFlags
	cmd := &cobra.Command{
		Use:               "facts PATTERN",
		Aliases:           []string{"facter", "setup"},
		Short:             "Gather the facts of hosts",
		Long:              `Gather the facts of the hosts PATTERN selects (a job, POST /facter), each host's as JSON.`,
		Example:           "  exectl facts db1\n  exectl facts 'web*' --json | jq '.[].facts.os?'",
		GroupID:           "run",
		Args:              positional("PATTERN"),
		ValidArgsFunction: a.completeHosts(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.check(cmd)
			if err != nil {
				return err
			}
			return a.submit(cmd, args[0], exe.Request{Operate: exe.OpFacter}, opts)
		},
	}
	f.add(cmd, true, true)
	return cmd
}

func (a *app) runCommand() *cobra.Command {
	var f jobFlags
	var command string
	cmd := &cobra.Command{
		Use:   "run PATTERN -- COMMAND [ARG...]",
		Short: "Run a command on hosts",
		Long: `Run a command on the hosts PATTERN selects (a job, POST /execute) and show
each host's exit code and output as it finishes, as ansible's ad-hoc shell
does: "host | CHANGED | rc=0 >>", or FAILED with a non-zero code.

The words after -- are joined with spaces into one command line, which
each host's shell runs (sh -c), as ssh does; quote what your local shell
must not expand. -a/--args gives the command line as one argument, as
ansible -a does.

-f/--forks bounds the hosts worked on at once, as ansible -f does; the
server lowers a value above its [runner] concurrency, which applies
without -f. Ansible's -b/--become has no per-request equivalent in exed's
API and is refused: privilege escalation is set per host in the inventory
(ansible_become).`,
		Example: "  exectl run 'web*' -- uptime\n  exectl run db1 -- 'systemctl status postgresql | head -3'\n  exectl run all -a 'df -h /' --timeout 30 -f 10",
		GroupID: "run",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("run needs PATTERN and a command (exectl run PATTERN -- COMMAND)")
			}
			if dash := cmd.ArgsLenAtDash(); dash > 1 {
				return usagef("run takes one PATTERN before --; unexpected: %s", strings.Join(args[1:dash], " "))
			}
			if len(args) == 1 && command == "" {
				return usagef("run needs a command after the pattern: exectl run %s -- COMMAND", args[0])
			}
			if len(args) > 1 && command != "" {
				return usagef("give the command either after -- or with -a, not both")
			}
			return nil
		},
		ValidArgsFunction: a.completeHosts(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.check(cmd)
			if err != nil {
				return err
			}
			if len(args) > 1 {
				command = strings.Join(args[1:], " ")
			}
			return a.submit(cmd, args[0], exe.Request{Operate: exe.OpExecute, Execute: exe.ExecuteArgs{Cmd: command}}, opts)
		},
	}
	cmd.Flags().StringVarP(&command, "args", "a", "", "the command line, as one argument (instead of -- COMMAND)")
	f.add(cmd, true, true)
	return cmd
}

// serviceStates are the --state values, as Ansible's service module
// names them, and the API's state (and graceful) for each.
var serviceStates = map[string]exe.ServiceArgs{
	"started":   {State: exe.ServiceStarted},
	"stopped":   {State: exe.ServiceStopped},
	"restarted": {State: exe.ServiceRestarted},
	"reloaded":  {State: exe.ServiceRestarted, Graceful: true},
}

func (a *app) serviceCommand() *cobra.Command {
	var f jobFlags
	var state string
	cmd := &cobra.Command{
		Use:   "service PATTERN NAME --state started|stopped|restarted|reloaded",
		Short: "Start, stop, restart or reload a service on hosts",
		Long: `Bring the service NAME to a state on the hosts PATTERN selects (a job, POST
/service), with the states of Ansible's service module: started, stopped,
restarted, reloaded. CHANGED where it did something, SUCCESS where it was
already so.`,
		Example:           "  exectl service 'web*' nginx --state reloaded",
		GroupID:           "run",
		Args:              positional("PATTERN", "NAME"),
		ValidArgsFunction: a.completeHosts(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.check(cmd)
			if err != nil {
				return err
			}
			svc, ok := serviceStates[state]
			if !ok {
				return usagef("--state %q: give started, stopped, restarted or reloaded", state)
			}
			svc.Name = args[1]
			return a.submit(cmd, args[0], exe.Request{Operate: exe.OpService, Service: svc}, opts)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "started, stopped, restarted or reloaded (required)")
	_ = cmd.MarkFlagRequired("state")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"started", "stopped", "restarted", "reloaded"}, cobra.ShellCompDirectiveNoFileComp))
	f.add(cmd, true, true)
	return cmd
}

func (a *app) deployCommand() *cobra.Command {
	var f jobFlags
	var tags, vars []string
	cmd := &cobra.Command{
		Use:   "deploy ROLE PATTERN [-t TAGS] [-e VARS]...",
		Short: "Deploy a role on hosts",
		Long: `Deploy ROLE on the hosts PATTERN selects (a job, POST /deploy), with
ansible-playbook's flag names: -t/--tags runs only those tags (comma-
separated, or repeated), -e/--extra-vars passes variables, repeated, later
ones winning:

  -e @vars.yml        a YAML or JSON file, read as Ansible reads it (yes is true)
  -e 'k=v k2="a b"'   key=value pairs; the values are strings
  -e '{"port": 80}'   YAML or JSON

Each host's steps show as they finish, then a PLAY RECAP. A deploy holds
its hosts: a second one on a host it holds is refused (409).`,
		Example:           "  exectl deploy nginx 'web*' -t reconfig -e @prod.yml -e port=8080",
		GroupID:           "run",
		Args:              positional("ROLE", "PATTERN"),
		ValidArgsFunction: a.completeHosts(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.check(cmd)
			if err != nil {
				return err
			}
			ev, err := extraVars(vars)
			if err != nil {
				return err
			}
			var partial []string
			for _, t := range tags {
				if t = strings.TrimSpace(t); t != "" {
					partial = append(partial, t)
				}
			}
			return a.submit(cmd, args[1], exe.Request{Operate: exe.OpDeploy,
				Deploy: exe.DeployArgs{Role: args[0], Partial: partial, ExtraVars: ev}}, opts)
		},
	}
	cmd.Flags().StringSliceVarP(&tags, "tags", "t", nil, "only the role's steps with these tags (a,b)")
	cmd.Flags().StringArrayVarP(&vars, "extra-vars", "e", nil, "variables: @file.yml, key=value pairs, or YAML/JSON (repeatable)")
	f.add(cmd, false, true)
	return cmd
}

func (a *app) taskCommand() *cobra.Command {
	var f jobFlags
	var opts []string
	var name string
	cmd := &cobra.Command{
		Use:   "task TYPE PATTERN [--opt KEY=VALUE]...",
		Short: "Run a task (a rolling restart...) on hosts",
		Long: `Run a task of type TYPE on the hosts PATTERN selects (a job, POST /tasks).
--opt sets the task's options (exectl tasks lists them), typed as the task
declares each: batch=2 is a number, batch=25% a string, graceful=yes a
boolean. The task's steps show as they finish, then a PLAY RECAP.`,
		Example:           "  exectl task rollingrestart 'web*' --opt service=nginx --opt batch=25% --opt health_cmd='curl -fs localhost'",
		GroupID:           "run",
		Args:              positional("TYPE", "PATTERN"),
		ValidArgsFunction: a.completeTask,
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := f.check(cmd)
			if err != nil {
				return err
			}
			infos, err := a.client.Tasks(cmd.Context())
			if err != nil {
				return err
			}
			var schema exe.Schema
			found := false
			var types []string
			for _, info := range infos {
				types = append(types, info.Type)
				if info.Type == args[0] {
					schema, found = info.Options, true
				}
			}
			if !found {
				return usagef("no task of type %q on this server; it has: %s", args[0], strings.Join(types, ", "))
			}
			options, err := taskOptions(opts, schema)
			if err != nil {
				return err
			}
			if name == "" {
				name = args[0]
			}
			return a.submit(cmd, args[1], exe.Request{Operate: exe.OpTask,
				Task: exe.TaskArgs{Name: name, Type: args[0], Options: options}}, job)
		},
	}
	cmd.Flags().StringArrayVar(&opts, "opt", nil, "a task option, KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&name, "name", "", "a label for this run (the job's taskname; default TYPE)")
	f.add(cmd, false, false)
	return cmd
}

func (a *app) tasksCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "tasks",
		Short:   "List the server's task types and their options",
		GroupID: "run",
		Args:    positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos, err := a.client.Tasks(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(infos)
			}
			for i, info := range infos {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				fmt.Fprintf(a.stdout, "%s: %s\n", info.Type, info.Description)
				names := make([]string, 0, len(info.Options.Properties))
				for n := range info.Options.Properties {
					names = append(names, n)
				}
				sort.Strings(names)
				w := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
				for _, n := range names {
					p := info.Options.Properties[n]
					what := strings.Join(p.Type, "|")
					if contains(info.Options.Required, n) {
						what += ", required"
					} else if p.Default != nil {
						what += fmt.Sprintf(", default %v", p.Default)
					}
					fmt.Fprintf(w, "  --opt %s=\t%s\t%s\n", n, what, p.Description)
				}
				w.Flush()
			}
			return nil
		},
	}
}

func (a *app) jobsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, newest first",
		Long: `List the jobs the server keeps (those your token may see), newest first:
ID, state, operation, who submitted it, hosts, and when it started and
ended. With --json, one job object per line.`,
		GroupID: "jobs",
		Args:    positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			jobs, err := a.client.JobDetails(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				for _, j := range jobs {
					if err := a.printJSON(j); err != nil {
						return err
					}
				}
				return nil
			}
			w := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(w, "JID\tSTATE\tOPERATE\tUSER\tHOSTS\tSTARTED\tENDED")
			for _, j := range jobs {
				ended := "-"
				if j.EndAt > 0 {
					ended = clock(j.EndAt)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.JID, j.State, j.Operate, orDash(j.User),
					hostList(j.Targets, 40), clock(j.StartAt), ended)
			}
			return w.Flush()
		},
	}
}

func (a *app) jobCommand() *cobra.Command {
	var followJob bool
	cmd := &cobra.Command{
		Use:   "job JID [--follow]",
		Short: "Show a job and its hosts' results",
		Long: `Show job JID: what it runs, on which hosts, its state, and each host's
results so far. With --follow, show them as they come until the job ends
(from the first, whenever you start), as the run commands do; Ctrl-C then
cancels the job, a second Ctrl-C leaves it running.

Exit status: 2 when the job ended Failure, else 0 (also while it runs).`,
		GroupID:           "jobs",
		Args:              positional("JID"),
		ValidArgsFunction: a.completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if followJob {
				sigs, stop := interrupts()
				defer stop()
				return a.watch(cmd.Context(), args[0], time.Time{}, sigs)
			}
			job, err := a.client.Job(cmd.Context(), args[0], true)
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(job); err != nil {
					return err
				}
				return a.outcome(a.screen(), job)
			}
			a.showJob(job)
			return a.outcome(a.screen(), job)
		},
	}
	cmd.Flags().BoolVarP(&followJob, "follow", "F", false, "show the job's results as they come until it ends")
	return cmd
}

// showJob prints a job's header and every host's results (ReturnData),
// the announcements first, then the hosts in target order.
func (a *app) showJob(job *exe.Job) {
	scr := a.screen()
	args, _ := json.Marshal(job)
	var fields struct {
		OperateArgs json.RawMessage `json:"operate_args"`
	}
	_ = json.Unmarshal(args, &fields)
	ended := "-"
	if job.EndAt > 0 {
		ended = clock(job.EndAt)
	}
	state := job.State.String()
	if job.Error != "" {
		state += ": " + job.Error
	}
	fmt.Fprintf(a.stdout, "job %s\n  state:   %s\n  operate: %s %s\n  targets: %s\n  user:    %s\n  started: %s\n  ended:   %s\n",
		job.JID, state, job.Operate, fields.OperateArgs, strings.Join(job.Targets, ", "), orDash(job.User), clock(job.StartAt), ended)
	if job.Timeout > 0 {
		fmt.Fprintf(a.stdout, "  timeout: %s\n", job.Timeout)
	}
	if job.Forks > 0 {
		fmt.Fprintf(a.stdout, "  forks:   %d\n", job.Forks)
	}
	t := newTally(job, time.Unix(job.StartAt, 0))
	order := append([]string{exe.AnnounceHost}, job.Targets...)
	for h := range job.ReturnData {
		if !contains(order, h) {
			order = append(order, h)
		}
	}
	for _, h := range order {
		for _, ev := range job.ReturnData[h] {
			t.add(ev)
			scr.print(hostBlock(ev), statusColor(ev.Status))
		}
	}
	if t.multi && job.Finished() {
		scr.print(t.recap(scr.color), "")
	}
	if !job.Finished() {
		scr.notice("job %s is running; follow it with: exectl job %s --follow", job.JID, job.JID)
	}
}

func (a *app) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JID",
		Short: "Cancel a running job",
		Long: `Cancel job JID: its commands are stopped (their process groups get SIGHUP,
then SIGTERM and SIGKILL), and every host ends with an event: its result
if it had finished, FAILED "cancelled" if it was interrupted, SKIPPED if it
never started. A job that has already finished is an error (409).`,
		GroupID:           "jobs",
		Args:              positional("JID"),
		ValidArgsFunction: a.completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := a.client.Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(job)
			}
			fmt.Fprintf(a.stdout, "job %s cancelled: %s %s\n", job.JID, job.State, job.Error)
			return nil
		},
	}
}

func (a *app) deleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "delete JID",
		Short:             "Delete a finished job and its output",
		GroupID:           "jobs",
		Args:              positional("JID"),
		ValidArgsFunction: a.completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.client.Delete(cmd.Context(), args[0])
		},
	}
}

// clock is a Unix time as local wall-clock time.
func clock(unix int64) string {
	if unix == 0 {
		return "-"
	}
	return time.Unix(unix, 0).Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// hostList is hosts joined with commas, cut to about width characters
// with a count of the rest.
func hostList(hosts []string, width int) string {
	var b strings.Builder
	for i, h := range hosts {
		if i > 0 && b.Len()+len(h)+1 > width {
			fmt.Fprintf(&b, " +%d", len(hosts)-i)
			break
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(h)
	}
	return b.String()
}

// completeHosts completes argument at (a PATTERN) with the inventory's
// hosts, after the last "," or ":" of what is typed.
func (a *app) completeHosts(at int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) != at || a.connect(cmd, args) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		hosts, err := a.client.Target(cmd.Context(), "*")
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		cut := strings.LastIndexAny(toComplete, ",:") + 1
		prefix := toComplete[:cut]
		var out []cobra.Completion
		for _, h := range hosts {
			if strings.HasPrefix(prefix+h, toComplete) {
				out = append(out, prefix+h)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// completeJobs completes a JID with the server's jobs.
func (a *app) completeJobs(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) != 0 || a.connect(cmd, args) != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	jobs, err := a.client.JobDetails(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, j := range jobs {
		out = append(out, cobra.CompletionWithDesc(j.JID, fmt.Sprintf("%s %s %s", j.Operate, j.State, hostList(j.Targets, 30))))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeTask completes a task TYPE, then the PATTERN.
func (a *app) completeTask(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 1 {
		return a.completeHosts(1)(cmd, args, toComplete)
	}
	if len(args) != 0 || a.connect(cmd, args) != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	infos, err := a.client.Tasks(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, info := range infos {
		out = append(out, cobra.CompletionWithDesc(info.Type, info.Description))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
