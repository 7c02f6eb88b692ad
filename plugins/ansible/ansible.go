// Package ansible is an executor that drives the Ansible CLIs (ansible,
// ansible-playbook) of the machine it runs on: the playbooks, roles and
// inventories users already have, with every host's result streamed as it
// arrives. A small stdout callback plugin, embedded in the binary and
// written to a private directory, prints one JSON line per play, task and
// host result; the executor turns each into an exe.Event at once.
//
// Request data never reaches Ansible as code: module arguments go as JSON,
// the command of execute and every string of deploy's extra_vars go in a
// vars file tagged !unsafe (never templated on the controller), and
// extra_vars may not set ansible_* or _* variables.
package ansible

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/procgroup"
	"github.com/hashicorp/go-hclog"
)

//go:embed callback/exe_events.py
var callbackPlugin []byte

// Config configures an Executor.
type Config struct {
	// Workdir is where ansible runs (its ansible.cfg applies); default
	// the current directory.
	Workdir string
	// Playbooks holds _deploy.yml, relative to Workdir; default
	// "playbooks".
	Playbooks string
	// Inventory is passed as -i when set; else ansible's own config
	// decides.
	Inventory string
	// Forks is --forks; default 5 (ansible's). A request's forks
	// (exe.ForksFrom) may lower it for its operation, never raise it.
	Forks int
	// Timeout bounds each operation; zero: none beyond the caller's.
	Timeout time.Duration
	// KillGrace is how long ansible's process group (ansible, its
	// workers and ssh clients, and the commands of local-connection
	// hosts) gets after SIGHUP before SIGTERM, and after SIGTERM before
	// SIGKILL, when an operation is interrupted; zero: DefaultKillGrace.
	KillGrace time.Duration
	// OutputCap bounds each output field of an event; default 1 MiB.
	OutputCap int
	// Env is added to ansible's environment (KEY=value).
	Env    []string
	Logger hclog.Logger
}

// DefaultKillGrace is Config.KillGrace when it is zero.
const DefaultKillGrace = 2 * time.Second

// Executor implements exe.Executor with the Ansible CLIs.
type Executor struct {
	cfg         Config
	log         hclog.Logger
	callbackDir string
}

var (
	_ exe.Executor         = (*Executor)(nil)
	_ exe.RequestValidator = (*Executor)(nil)
)

// New checks that ansible runs and that <playbooks>/_deploy.yml exists,
// and installs the callback plugin in a private temporary directory
// (removed by Close).
func New(cfg Config) (*Executor, error) {
	if cfg.Workdir == "" {
		cfg.Workdir, _ = os.Getwd()
	}
	if cfg.Playbooks == "" {
		cfg.Playbooks = "playbooks"
	}
	if !filepath.IsAbs(cfg.Playbooks) {
		cfg.Playbooks = filepath.Join(cfg.Workdir, cfg.Playbooks)
	}
	if cfg.Forks <= 0 {
		cfg.Forks = 5
	}
	if cfg.OutputCap <= 0 {
		cfg.OutputCap = 1 << 20
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if out, err := exec.Command("ansible", "--version").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("[ansible] ansible does not run (Debian package ansible): %v: %s", err, firstLine(string(out)))
	}
	if _, err := os.Stat(filepath.Join(cfg.Playbooks, "_deploy.yml")); err != nil {
		return nil, fmt.Errorf("[ansible] playbooks: %s has no _deploy.yml (the playbook deploy runs)", cfg.Playbooks)
	}
	dir, err := os.MkdirTemp("", "exe-ansible-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "exe_events.py"), callbackPlugin, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Executor{cfg: cfg, log: cfg.Logger, callbackDir: dir}, nil
}

// Close removes the callback plugin's directory.
func (x *Executor) Close() error { return os.RemoveAll(x.callbackDir) }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// line is one JSON line of the callback plugin.
type line struct {
	Event  string         `json:"event"`
	Name   string         `json:"name"`
	Status string         `json:"status"`
	Host   string         `json:"host"`
	Task   string         `json:"task"`
	Item   bool           `json:"item"`
	Result map[string]any `json:"result"`
}

var statuses = map[string]exe.HostStatus{
	"ok": exe.HostOK, "changed": exe.HostChanged, "skipped": exe.HostSkipped, "failed": exe.HostFailed, "unreachable": exe.HostUnreachable,
}

// run runs an ansible CLI with the callback plugin, in a session of its own
// (no terminal: nothing can prompt), and calls fn with each JSON line as it
// is printed. When ctx ends, the whole process group is stopped
// (procgroup.Stop), and fn gets an "interrupted" line for each host whose
// task had started and not reported, so that the host still ends with an
// event. Ansible has no means to stop what a task started on a remote
// host; local-connection tasks are in the group and stop with it.
func (x *Executor) run(ctx context.Context, bin string, args []string, fn func(line)) error {
	if x.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, x.cfg.Timeout, errors.New("operation timed out"))
		defer cancel()
	}
	if x.cfg.Inventory != "" {
		args = append([]string{"-i", x.cfg.Inventory}, args...)
	}
	if exe.ForksFrom(ctx) > 0 {
		// A request's forks, at most Config.Forks: the flag, which both
		// CLIs take, wins over an ANSIBLE_FORKS that Config.Env may set.
		args = append([]string{"--forks", strconv.Itoa(exe.BoundForks(ctx, x.cfg.Forks))}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = x.cfg.Workdir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var stopping atomic.Bool
	stopped := make(chan struct{})
	cmd.Cancel = func() error {
		stopping.Store(true)
		go func() {
			defer close(stopped)
			procgroup.Stop(cmd.Process.Pid, x.cfg.KillGrace)
		}()
		return nil
	}
	// Past the escalation, pipes still held by a process outside the
	// group are closed.
	cmd.WaitDelay = 2*x.cfg.KillGrace + 2*time.Second
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CALLBACK_PLUGINS="+x.callbackDir,
		"ANSIBLE_STDOUT_CALLBACK=exe_events",
		"ANSIBLE_LOAD_CALLBACK_PLUGINS=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_DEPRECATION_WARNINGS=0",
		"ANSIBLE_FORKS="+strconv.Itoa(x.cfg.Forks),
	)
	cmd.Env = append(cmd.Env, x.cfg.Env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr capBuffer
	stderr.limit = 64 << 10
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	failed := map[string]bool{} // hosts with a FAILED or UNREACHABLE result
	open := map[string]string{} // host -> its task that started and has not reported
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Event == "" {
			x.log.Debug("ansible output", "line", truncate(sc.Text(), 500))
			continue
		}
		switch {
		case l.Event == "start":
			open[l.Host] = l.Task
		case l.Event == "result" && !l.Item:
			delete(open, l.Host)
		}
		if l.Event == "result" && !l.Item && (l.Status == "failed" || l.Status == "unreachable") {
			failed[l.Host] = true
		}
		fn(l)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		if stopping.Load() {
			<-stopped // bounded by the escalation: about twice KillGrace
		}
		hosts := make([]string, 0, len(open))
		for h := range open {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		for _, h := range hosts {
			fn(line{Event: "interrupted", Host: h, Task: open[h]})
		}
		return context.Cause(ctx)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		// 2: some host failed, 4: some host unreachable, 8: a play broke
		// on a failure; the events of those hosts say so. The same codes
		// also come from ansible itself stopping (2 for a role it cannot
		// find, 4 for a file it cannot parse), and then it prints an
		// "ERROR!" on stderr and no host explains the exit: that is an
		// abort, whatever the code, and every host not reported failed
		// must say so, or a deploy that never ran would look done.
		text, aborted := ansibleError(stderr.String())
		switch exit.ExitCode() {
		case 2, 4, 8:
			if len(failed) > 0 && !aborted {
				return nil
			}
		}
		if text == "" {
			text = lastLines(stderr.String(), 3)
		}
		return &AbortError{Command: bin, ExitCode: exit.ExitCode(), Text: text, failed: failed}
	}
	return err
}

// AbortError is the error of an operation that ansible ended with a
// non-zero exit status that its hosts' results do not explain: it stopped
// (a role it cannot find, a file it cannot parse, a bad setting) before
// or while running the hosts' tasks. Every host without a FAILED or
// UNREACHABLE result gets FAILED with Text.
type AbortError struct {
	Command  string // ansible or ansible-playbook
	ExitCode int
	// Text is ansible's error: stderr from its first "ERROR!" on, at most
	// 2 KiB, or its last lines when it printed no "ERROR!".
	Text   string
	failed map[string]bool
}

func (e *AbortError) Error() string {
	return fmt.Sprintf("%s exited %d: %s", e.Command, e.ExitCode, firstLine(e.Text))
}

// maxAbortText bounds AbortError.Text.
const maxAbortText = 2 << 10

// ansibleError returns ansible's own error from its stderr: the text from
// its first line starting "ERROR!" (ansible's prefix for the errors that
// stop it) to the end, trimmed; ok is false when there is none.
func ansibleError(stderr string) (text string, ok bool) {
	i := 0
	if !strings.HasPrefix(stderr, "ERROR!") {
		if i = strings.Index(stderr, "\nERROR!"); i < 0 {
			return "", false
		}
		i++
	}
	return truncate(strings.TrimSpace(stderr[i:]), maxAbortText), true
}

// tracker passes events on to emit and notes the hosts that had one.
type tracker struct {
	emit exe.Emit
	mu   sync.Mutex
	seen map[string]bool
}

func track(emit exe.Emit) *tracker { return &tracker{emit: emit, seen: map[string]bool{}} }

func (t *tracker) Emit(ev exe.Event) {
	t.mu.Lock()
	t.seen[ev.Host] = true
	t.mu.Unlock()
	t.emit(ev)
}

// end completes the events of an operation on hosts that run returned
// err for. When ansible stopped (AbortError), each host without a FAILED
// or UNREACHABLE result gets FAILED with ansible's error. When ctx ended,
// the hosts with no event at all had no task started (run reports those
// it interrupted): they get SKIPPED exe.NotStarted, which the job's
// Runner cannot know by itself.
func (t *tracker) end(ctx context.Context, hosts []string, err error) error {
	var ab *AbortError
	if errors.As(err, &ab) {
		for _, h := range hosts {
			if !ab.failed[h] {
				t.Emit(exe.Event{Host: h, Status: exe.HostFailed, Msg: "ansible stopped: " + ab.Text})
			}
		}
		return err
	}
	if ctx.Err() != nil {
		for _, h := range hosts {
			t.mu.Lock()
			seen := t.seen[h]
			t.mu.Unlock()
			if !seen {
				t.Emit(exe.NotStarted(h, context.Cause(ctx)))
			}
		}
	}
	return err
}

// truncate cuts s to at most n bytes, never inside a character.
func truncate(s string, n int) string { return exe.TruncateUTF8(s, n) }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// capBuffer keeps the first limit bytes written to it.
type capBuffer struct {
	mu    sync.Mutex
	limit int
	b     []byte
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.limit - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

// Match implements exe.Executor with ansible --list-hosts.
func (x *Executor) Match(ctx context.Context, pattern string) ([]string, error) {
	if strings.HasPrefix(pattern, "-") {
		return nil, exe.Errorf(exe.ErrInvalid, "pattern: must not start with '-'")
	}
	args := []string{pattern, "--list-hosts"}
	if x.cfg.Inventory != "" {
		args = append([]string{"-i", x.cfg.Inventory}, args...)
	}
	cmd := exec.CommandContext(ctx, "ansible", args...)
	cmd.Dir = x.cfg.Workdir
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1")
	cmd.Env = append(cmd.Env, x.cfg.Env...)
	var stderr capBuffer
	stderr.limit = 16 << 10
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, exe.Errorf(exe.ErrInvalid, "pattern: %s", lastLines(stderr.String(), 1))
	}
	hosts := []string{}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "hosts (") {
			continue
		}
		hosts = append(hosts, l)
	}
	sort.Strings(hosts)
	return hosts, nil
}

// adhoc runs one module on hosts, with JSON arguments, and emits each
// host's result through conv.
func (x *Executor) adhoc(ctx context.Context, hosts []string, module string, args map[string]any, vars map[string]any,
	emit exe.Emit, conv func(line, *exe.Event)) error {
	if len(hosts) == 0 {
		return nil
	}
	a, err := json.Marshal(args)
	if err != nil {
		return err
	}
	cli := []string{strings.Join(hosts, ","), "-m", module}
	if len(args) > 0 { // "{}" would be read as a free-form argument
		cli = append(cli, "-a", string(a))
	}
	if vars != nil {
		f, err := x.varsFile(vars)
		if err != nil {
			return err
		}
		defer os.Remove(f)
		cli = append(cli, "-e", "@"+f)
	}
	tr := track(emit)
	emit = tr.Emit
	return tr.end(ctx, hosts, x.run(ctx, "ansible", cli, func(l line) {
		if l.Event == "interrupted" {
			emit(interrupted(ctx, l.Host, ""))
			return
		}
		if l.Event != "result" || l.Item {
			return
		}
		ev := x.event(l)
		if conv != nil && ev.Status != exe.HostUnreachable {
			conv(l, &ev)
		}
		emit(ev)
	}))
}

// interrupted is the event of a host whose task ctx's end interrupted:
// FAILED with the reason. Ansible reports no partial output of a task.
func interrupted(ctx context.Context, host, task string) exe.Event {
	cause := context.Cause(ctx)
	msg := cause.Error()
	switch {
	case errors.Is(cause, context.Canceled), errors.Is(cause, exe.ErrCancelled):
		msg = "cancelled"
	case errors.Is(cause, context.DeadlineExceeded):
		msg = "timed out"
	}
	return exe.Event{Host: host, Status: exe.HostFailed, Name: task,
		Msg: msg + "; ansible cannot stop what the task started on a remote host, so that may still run"}
}

// event is a host result as an exe.Event: status and message.
func (x *Executor) event(l line) exe.Event {
	ev := exe.Event{Host: l.Host, Status: statuses[l.Status], Name: l.Task}
	if msg, ok := l.Result["msg"].(string); ok {
		ev.Msg = truncate(msg, 4096)
	}
	return ev
}

// Ping implements exe.Executor with the ping module.
func (x *Executor) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return x.adhoc(ctx, hosts, "ping", map[string]any{}, nil, emit, func(_ line, ev *exe.Event) { ev.Name = "" })
}

// Facter implements exe.Executor with the setup module.
func (x *Executor) Facter(ctx context.Context, hosts []string, emit exe.Emit) error {
	return x.adhoc(ctx, hosts, "setup", map[string]any{}, nil, emit, func(l line, ev *exe.Event) {
		ev.Name = ""
		if facts, ok := l.Result["ansible_facts"].(map[string]any); ok {
			ev.Facts = facts
		}
	})
}

// Service implements exe.Executor with the service module.
func (x *Executor) Service(ctx context.Context, hosts []string, args exe.ServiceArgs, emit exe.Emit) error {
	// Ansible's service modules put the name on the service manager's
	// command line, where a leading '-' is an option.
	if !exe.ValidServiceName(args.Name) {
		return exe.Errorf(exe.ErrInvalid, "name: %q is not a valid service name", args.Name)
	}
	state := map[exe.ServiceState]string{exe.ServiceStarted: "started", exe.ServiceStopped: "stopped", exe.ServiceRestarted: "restarted"}[args.State]
	if args.State == exe.ServiceRestarted && args.Graceful {
		state = "reloaded"
	}
	if state == "" {
		return exe.Errorf(exe.ErrInvalid, "state: unknown service state %d", args.State)
	}
	return x.adhoc(ctx, hosts, "service", map[string]any{"name": args.Name, "state": state}, nil, emit,
		func(_ line, ev *exe.Event) { ev.Name = "" })
}

// Execute implements exe.Executor with the shell module. The command
// reaches the module through an !unsafe variable, so nothing in it is
// templated on the controller.
func (x *Executor) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	return x.adhoc(ctx, hosts, "shell", map[string]any{"cmd": "{{ _exe_cmd }}"}, map[string]any{"_exe_cmd": args.Cmd}, emit,
		func(l line, ev *exe.Event) {
			ev.Name = ""
			rc, _ := l.Result["rc"].(float64)
			stdout, _ := l.Result["stdout"].(string)
			stderr, _ := l.Result["stderr"].(string)
			cut := func(s string) string {
				if len(s) > x.cfg.OutputCap {
					ev.Truncated = true
					return exe.TruncateUTF8(s, x.cfg.OutputCap)
				}
				return s
			}
			ev.Exec = &exe.ExecResult{RTC: int(rc), Stdout: cut(stdout), Stderr: cut(stderr)}
			if ev.Status == exe.HostOK {
				ev.Status = exe.HostChanged // a command is a change, as elsewhere
			}
			if ev.Status == exe.HostFailed {
				ev.Msg = fmt.Sprintf("command exited %d", int(rc))
			}
		})
}

// checkExtraVars refuses the variables a request may not set: ansible_*
// would change how Ansible reaches a host, and _* are the playbook's own
// (_targets, _role).
func checkExtraVars(vars map[string]any) error {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names) // the same request, the same message
	for _, k := range names {
		if strings.HasPrefix(k, "ansible_") || strings.HasPrefix(k, "_") {
			return exe.Errorf(exe.ErrInvalid, "extra_vars: %q: names starting with ansible_ or _ are reserved", k)
		}
	}
	return nil
}

// ValidateRequest implements exe.RequestValidator: what Deploy and Service
// would refuse is refused before the job is stored.
func (x *Executor) ValidateRequest(_ context.Context, req exe.Request) error {
	switch req.Operate {
	case exe.OpDeploy:
		return checkExtraVars(req.Deploy.ExtraVars)
	case exe.OpService:
		if !exe.ValidServiceName(req.Service.Name) {
			return exe.Errorf(exe.ErrInvalid, "name: %q is not a valid service name", req.Service.Name)
		}
	}
	return nil
}

// Validates implements exe.ValidationScope: ValidateRequest checks deploys
// and services only.
func (x *Executor) Validates(op exe.Operate) bool { return op == exe.OpDeploy || op == exe.OpService }

// Deploy implements exe.Executor: ansible-playbook <playbooks>/_deploy.yml
// with _targets, _role and the request's extra_vars, partial as --tags.
// Each task's start is an ANNOUNCE event and each host result an event
// named after its task.
func (x *Executor) Deploy(ctx context.Context, hosts []string, args exe.DeployArgs, emit exe.Emit) error {
	if err := checkExtraVars(args.ExtraVars); err != nil {
		return err
	}
	vars := map[string]any{}
	for k, v := range args.ExtraVars {
		vars[k] = v
	}
	vars["_targets"] = strings.Join(hosts, ",")
	vars["_role"] = args.Role
	f, err := x.varsFile(vars)
	if err != nil {
		return err
	}
	defer os.Remove(f)
	cli := []string{filepath.Join(x.cfg.Playbooks, "_deploy.yml"), "-e", "@" + f}
	if len(args.Partial) > 0 {
		cli = append(cli, "--tags", strings.Join(args.Partial, ","))
	}
	tr := track(emit)
	emit = tr.Emit
	return tr.end(ctx, hosts, x.run(ctx, "ansible-playbook", cli, func(l line) {
		switch l.Event {
		case "play", "task":
			emit(exe.Event{Host: exe.AnnounceHost, Status: exe.HostOK, Name: l.Name, Msg: l.Event})
		case "interrupted":
			emit(interrupted(ctx, l.Host, l.Task))
		case "result":
			if l.Item {
				return
			}
			ev := x.event(l)
			if ev.Status == exe.HostFailed && ev.Msg == "" {
				if stderr, ok := l.Result["stderr"].(string); ok {
					ev.Msg = truncate(stderr, 4096)
				}
			}
			emit(ev)
		}
	}))
}

// varsFile writes vars as a YAML vars file in which every string is tagged
// !unsafe: Ansible then never templates it, so a value such as
// "{{ lookup('pipe', 'id') }}" stays text. The file is private to us.
func (x *Executor) varsFile(vars map[string]any) (string, error) {
	f, err := os.CreateTemp(x.callbackDir, "vars-*.yml")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteString(": ")
		if err := unsafeYAML(&b, vars[k]); err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", err
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(f, b.String()); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), f.Close()
}

// unsafeYAML writes v in YAML flow style with every string tagged !unsafe.
// JSON strings are valid YAML double-quoted scalars.
func unsafeYAML(b *strings.Builder, v any) error {
	switch t := v.(type) {
	case string:
		s, _ := json.Marshal(t)
		b.WriteString("!unsafe ")
		b.Write(s)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteString(": ")
			if err := unsafeYAML(b, t[k]); err != nil {
				return err
			}
		}
		b.WriteString("}")
	case []any:
		b.WriteString("[")
		for i, e := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := unsafeYAML(b, e); err != nil {
				return err
			}
		}
		b.WriteString("]")
	default:
		j, err := json.Marshal(t) // numbers, booleans, null
		if err != nil {
			return fmt.Errorf("extra_vars: %w", err)
		}
		b.Write(j)
	}
	return nil
}
