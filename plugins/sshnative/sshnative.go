// Package sshnative is exed's own executor: no Python and no agent on the
// hosts. Hosts come from an Ansible-style inventory; localhost (and any host
// with ansible_connection=local) is reached with a local connection.
//
// For the same inventory, ansible.cfg and ssh_config, a command reaches the
// same address, port and user, with the same privilege, as Ansible's ssh
// connection would: Ansible's connection variables (their ansible_ssh_*
// spellings too) and ssh arguments are read as Ansible hands them to ssh,
// ssh_config is applied as ssh applies it (ProxyJump chains included),
// and become runs commands through sudo or su. What sshnative cannot honour
// is a warning at load, and a host whose address, user or privilege depend
// on it is UNREACHABLE or FAILED saying why: never reached some other way.
//
// Every operation fans out over its hosts with bounded concurrency and emits
// each host's event as soon as that host finishes. Request fields reach the
// host as positional arguments of fixed scripts (or, for execute, as the
// single argument of sh -c), never spliced into shell code.
package sshnative

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/inventory"
	"github.com/hashicorp/go-hclog"
)

//go:embed scripts/facts.sh
var factsScript string

//go:embed scripts/service.sh
var serviceScript string

// executeScript runs the request's command, passed as its first argument.
const executeScript = `__exe_cmd=$1; shift; eval "$__exe_cmd"`

// DefaultForks is Config.Forks when it is zero: more than parallel-ssh's 32
// and salt-ssh's 25, since a host mostly waits on the network.
const DefaultForks = 50

// Config configures an Executor.
type Config struct {
	// Inventory is the inventory the executor works on; nil means
	// inventory.Default() (localhost only).
	Inventory *inventory.Inventory
	// Forks bounds how many hosts one operation works on at once, as
	// Ansible's forks do; zero means DefaultForks. Hosts are I/O bound:
	// the bound is not the CPU count. A request's own forks
	// (exe.ForksFrom) may lower it for its operation, never raise it.
	Forks int
	// OutputCap bounds each captured output field in bytes; zero means
	// DefaultOutputCap.
	OutputCap int
	// CommandTimeout bounds each command on each host; zero means no bound
	// beyond the caller's context.
	CommandTimeout time.Duration
	// KillGrace is how long the process group of an interrupted command
	// (cancelled, timed out, shut down) gets after SIGHUP before SIGTERM,
	// and after SIGTERM before SIGKILL; zero means DefaultKillGrace.
	KillGrace time.Duration
	// Roles is the directory of script roles for deploy
	// (roles/<role>/main.sh, roles/<role>/tags/<tag>.sh); empty: "roles".
	Roles string
	// SSH configures connections to hosts that are not local.
	SSH SSHOptions
	// StateDir is where the executor keeps its journal of running
	// commands (created if missing). Set, a command never outlives the
	// process that ran it for long: when an Executor starts, it ends
	// (SIGHUP, SIGTERM, SIGKILL to the process group) the commands that
	// dead processes using the same directory left running, and after a
	// cancel, a timeout or a lost connection it makes sure the command's
	// process group is gone. Several processes may share one directory.
	// Empty: no journal.
	StateDir string
	Logger   hclog.Logger
	// Observer is told of the SSH connections set up and pooled
	// (metrics). Nil: nobody.
	Observer Observer
	// AnsibleConfig is the ansible.cfg the configuration came from, logged
	// at start; "" for none.
	AnsibleConfig string
	// Warnings are what reading the configuration noticed; New logs them
	// with its own (see Executor.Warnings).
	Warnings []string
}

// DefaultKillGrace is Config.KillGrace when it is zero: a command that
// ignores SIGHUP and SIGTERM is killed at most twice this long after it
// was interrupted.
const DefaultKillGrace = 2 * time.Second

// Executor implements exe.Executor.
type Executor struct {
	cfg   Config
	log   hclog.Logger
	local conn
	pool  *pool
	// journal is nil without Config.StateDir.
	journal *journal
	// reaping counts the reaps in flight; Close waits for them.
	reaping sync.WaitGroup

	resolver *resolver
	// defaults are Config.SSH.HostDefaults, as values of variables.
	defaults map[string]any
	// current is the inventory operations start with; SetInventory
	// replaces it.
	current atomic.Pointer[inventoryView]
	// inventories counts SetInventory calls: the MatchVersion.
	inventories atomic.Uint64
	// fixed are the warnings of the configuration (ansible.cfg,
	// ssh_config: cfgWarnings and those of the ssh_config files as last
	// read); warnings adds the current inventory's.
	cfgWarnings []string
	fixed       []string
	mu          sync.Mutex
	warnings    []string
	// runIDs names the commands of an executor without a journal (see
	// marked).
	runIDs runIDs
}

var (
	_ exe.Executor       = (*Executor)(nil)
	_ exe.MatchVersioner = (*Executor)(nil)
)

// inventoryView is an inventory with how each of its hosts is reached,
// resolved once per host and kept while the inventory is current.
type inventoryView struct {
	inv *inventory.Inventory
	// setups are the listed hosts' setups by inventory.HostVars.Index: 8
	// bytes a host, where a map by name cost a hash of the name on every
	// look-up, a lock, and about three times the memory.
	setups []atomic.Pointer[hostSetup]
	mu     sync.Mutex
	// others are the setups of the hosts the inventory does not list (the
	// implicit localhost, a host as a journal recorded it), by name.
	others map[string]*hostSetup
	// shared holds one copy of each become, set of ssh arguments and
	// endpoint trust that hosts have alike.
	shared *shared
}

func newInventoryView(inv *inventory.Inventory) *inventoryView {
	return &inventoryView{inv: inv, setups: make([]atomic.Pointer[hostSetup], inv.Len()),
		others: map[string]*hostSetup{}, shared: newShared()}
}

func (x *Executor) view() *inventoryView { return x.current.Load() }

// New returns an Executor for cfg.
func New(cfg Config) (*Executor, error) {
	if cfg.Inventory == nil {
		cfg.Inventory = inventory.Default()
	}
	if cfg.Forks <= 0 {
		cfg.Forks = DefaultForks
	}
	if cfg.Roles == "" {
		cfg.Roles = "roles"
	}
	if cfg.OutputCap <= 0 {
		cfg.OutputCap = DefaultOutputCap
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	p, err := newPool(cfg.SSH, cfg.Observer)
	if err != nil {
		return nil, fmt.Errorf("sshnative: %w", err)
	}
	x := &Executor{cfg: cfg, log: log, local: localConn{grace: cfg.KillGrace}, pool: p, resolver: newResolver(cfg.SSH),
		defaults: anyDefaults(cfg.SSH.HostDefaults)}
	if x.runIDs.prefix, err = randomID(); err != nil {
		p.close()
		return nil, fmt.Errorf("sshnative: %w", err)
	}
	configWarnings, err := x.resolver.check()
	if err != nil {
		p.close()
		return nil, fmt.Errorf("sshnative: %w", err)
	}
	if cfg.AnsibleConfig != "" {
		log.Info("using ansible.cfg", "path", cfg.AnsibleConfig)
	}
	x.cfgWarnings = cfg.Warnings
	x.fixed = append(append([]string(nil), cfg.Warnings...), configWarnings...)
	for _, w := range x.fixed {
		log.Warn(w)
	}
	for _, w := range x.SetInventory(cfg.Inventory) {
		log.Warn(w)
	}
	if cfg.StateDir != "" {
		if x.journal, err = openJournal(cfg.StateDir, log); err != nil {
			p.close()
			return nil, fmt.Errorf("sshnative: %w", err)
		}
		x.reaping.Add(1)
		go func() { defer x.reaping.Done(); x.reapDead() }()
	}
	return x, nil
}

// Close waits until the process groups of cancelled commands and those
// dead processes left running are dealt with, then closes every pooled SSH
// connection and the journal. Call it once no operation runs.
func (x *Executor) Close() error {
	x.reaping.Wait()
	x.pool.close()
	if x.journal != nil {
		x.journal.close()
	}
	return nil
}

// Match selects inventory hosts by pattern.
func (x *Executor) Match(_ context.Context, pattern string) ([]string, error) {
	return x.view().inv.Match(pattern)
}

// MatchVersion implements exe.MatchVersioner: Match answers from the
// inventory SetInventory set last, and the version grows with each call
// to it.
func (x *Executor) MatchVersion() (uint64, bool) { return x.inventories.Load(), true }

// SetInventory makes inv (nil: inventory.Default()) the inventory of the
// operations that start from now on, while those under way finish with
// the one they started with, and returns what New would warn about it
// (variables not honoured, hosts that will be UNREACHABLE or FAILED).
// How each host is reached is resolved again from inv. The plugin calls
// it when exed sends its section again (SIGHUP); the rest of the
// configuration stays as it was started.
func (x *Executor) SetInventory(inv *inventory.Inventory) []string {
	if inv == nil {
		inv = inventory.Default()
	}
	invWarnings := x.checkInventory(inv)
	x.current.Store(newInventoryView(inv))
	x.inventories.Add(1) // after the Store: see exe.MatchVersioner
	x.mu.Lock()
	x.warnings = append(append([]string(nil), x.fixed...), invWarnings...)
	x.mu.Unlock()
	return invWarnings
}

// reload is SetInventory for a reload of the configuration (SIGHUP):
// knownHosts ([sshnative] known_hosts) become the user known_hosts files
// of hosts whose ssh_config names none, as inv becomes the inventory, and
// the ssh_config files are read again, for the operations that start from
// then on. A known_hosts file that does not exist, or a configured
// ssh_config file that is gone or does not parse, is an error, and
// nothing changes. The known_hosts files' contents need no reload: every
// connection reads them as they are. It returns the warnings of the
// ssh_config files, then the inventory's.
func (x *Executor) reload(inv *inventory.Inventory, knownHosts []string) ([]string, error) {
	if err := checkKnownHosts(knownHosts); err != nil {
		return nil, err
	}
	configWarnings, err := x.resolver.reloadConfigs()
	if err != nil {
		return nil, err
	}
	x.resolver.setKnownHosts(knownHosts)
	x.mu.Lock()
	x.fixed = append(append([]string(nil), x.cfgWarnings...), configWarnings...)
	x.mu.Unlock()
	return append(configWarnings, x.SetInventory(inv)...), nil // a copy of the cache's
}

// connFor returns the connection that runs an operation's commands on
// host: journaled when the executor keeps a journal, and in any case with
// each command marked by a run ID, by which a stop finds the process
// groups the command's processes moved to.
func (x *Executor) connFor(v *inventoryView, h inventory.HostVars) (conn, error) {
	c, err := x.hostConn(v, h)
	if err != nil {
		return c, err
	}
	if x.journal == nil {
		return marked{conn: c, ids: &x.runIDs}, nil
	}
	return tracked{conn: c, x: x, host: h}, nil
}

// isLocal tells whether c runs its commands on this machine, through the
// run-ID wrappers connFor puts around it (with a journal or without).
func isLocal(c conn) bool {
	switch w := c.(type) {
	case localConn:
		return true
	case tracked:
		return isLocal(w.conn)
	case marked:
		return isLocal(w.conn)
	}
	return false
}

// hostSetup is how a host's commands run, resolved once per host: over
// ssh, locally (no error and no ssh.x), or not at all (err). The setup,
// its connection and its endpoint are one allocation of 128 bytes.
type hostSetup struct {
	ssh sshConn
	// err is why the host cannot be worked on as the inventory asks: an
	// *unreachableError (where) or a *failedError (as whom).
	err error
}

// hostConn returns the connection that reaches host, a host of v (from
// v.inv.HostVars, or not of the inventory: inventory.VarsOf). Its
// variables are read only when it is set up: once per host and view.
func (x *Executor) hostConn(v *inventoryView, h inventory.HostVars) (conn, error) {
	hs := x.setupOf(v, h)
	if hs.err != nil {
		return nil, hs.err
	}
	if hs.ssh.x == nil {
		return x.local, nil
	}
	return &hs.ssh, nil
}

// setupOf returns the host's setup in v, set up the first time. Two
// operations may both set a host up, to the same result: outside any
// lock, and the first one is kept.
func (x *Executor) setupOf(v *inventoryView, h inventory.HostVars) *hostSetup {
	if i := h.Index(); i >= 0 {
		p := &v.setups[i]
		if hs := p.Load(); hs != nil {
			return hs
		}
		hs := x.setup(v, h)
		if !p.CompareAndSwap(nil, hs) {
			return p.Load()
		}
		return hs
	}
	v.mu.Lock()
	hs, ok := v.others[h.Name()]
	v.mu.Unlock()
	if ok {
		return hs
	}
	hs = x.setup(v, h)
	v.mu.Lock()
	defer v.mu.Unlock()
	if prev, ok := v.others[h.Name()]; ok {
		return prev
	}
	v.others[h.Name()] = hs
	return hs
}

// setup resolves how a host's commands run.
func (x *Executor) setup(v *inventoryView, h inventory.HostVars) *hostSetup {
	c, err := settingsOf(h, x.defaults)
	if err != nil {
		return &hostSetup{err: &unreachableError{err}}
	}
	remoteUser := c.User
	if remoteUser == "" {
		remoteUser = x.cfg.SSH.User
	}
	switch c.Connection {
	case "local":
		if c.Become && c.BecomeUser != x.resolver.localUser {
			return &hostSetup{err: &failedError{fmt.Errorf("become %s is not supported on a local connection (exed runs as %s); the command was not run", c.BecomeUser, x.resolver.localUser)}}
		}
		return &hostSetup{}
	case "ssh", "paramiko_ssh":
	default:
		return &hostSetup{err: &unreachableError{fmt.Errorf("ansible_connection=%s is not supported (use ssh or local)", c.Connection)}}
	}
	b, err := v.shared.become(c, remoteUser)
	if err != nil {
		return &hostSetup{err: err}
	}
	hs := &hostSetup{ssh: sshConn{x: x, become: b, posix: c.ShellType == "" || c.ShellType == "sh"}}
	if err := x.resolver.resolveIn(v.shared, &hs.ssh.ep, h.Name(), c, remoteUser); err != nil {
		return &hostSetup{err: err}
	}
	return hs
}

// Warnings are what loading noticed that sshnative does not honour (see
// checkInventory); each is logged at start too.
func (x *Executor) Warnings() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.warnings...)
}

// hostFunc does an operation's work on one host and emits its events.
type hostFunc func(ctx context.Context, host string, c conn, emit exe.Emit)

// single adapts an operation with one event per host: SKIPPED
// exe.NotStarted for a host whose command never started (fn returns
// false), which says so to the job's Runner (which cannot know it).
func single(fn func(ctx context.Context, c conn) (exe.Event, bool)) hostFunc {
	return func(ctx context.Context, host string, c conn, emit exe.Emit) {
		ev, ok := fn(ctx, c)
		if !ok {
			emit(exe.NotStarted(host, context.Cause(ctx)))
			return
		}
		ev.Host = host
		emit(ev)
	}
}

// each runs fn for every host, at most min(the request's forks, Config.Forks)
// at once (exe.BoundForks); fn emits each
// result as soon as it is ready. Hosts missing from the inventory and hosts
// whose connection cannot be set up are reported UNREACHABLE. Once ctx
// ends no further host is started, and those end SKIPPED exe.NotStarted,
// after the hosts under way have reported.
func (x *Executor) each(ctx context.Context, hosts []string, emit exe.Emit, fn hostFunc) error {
	sem := make(chan struct{}, exe.BoundForks(ctx, x.cfg.Forks))
	v := x.view()
	var wg sync.WaitGroup
	started := 0
	defer func() {
		wg.Wait()
		for _, name := range hosts[started:] {
			emit(exe.NotStarted(name, context.Cause(ctx)))
		}
	}()
	for _, name := range hosts {
		acquired := false
		select {
		case sem <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			if acquired {
				<-sem
			}
			return nil
		}
		started++
		wg.Add(1)
		host := func(name string) {
			defer func() { <-sem; wg.Done() }()
			// Its variables one at a time, not all of them in a map.
			h, ok := v.inv.HostVars(name)
			if !ok {
				emit(exe.Event{Host: name, Status: exe.HostUnreachable, Msg: "host is not in the inventory"})
				return
			}
			c, err := x.connFor(v, h)
			if err != nil {
				status := exe.HostUnreachable
				var failed *failedError
				if errors.As(err, &failed) {
					status = exe.HostFailed
				}
				emit(exe.Event{Host: name, Status: status, Msg: err.Error()})
				return
			}
			hctx, cancel := ctx, context.CancelFunc(func() {})
			if x.cfg.CommandTimeout > 0 {
				hctx, cancel = context.WithTimeout(ctx, x.cfg.CommandTimeout)
			}
			defer cancel()
			fn(hctx, name, c, emit)
		}
		if len(hosts) == 1 {
			// A goroutine would only be waited for, and grow a new
			// stack for each operation.
			host(name)
		} else {
			go host(name)
		}
	}
	return nil
}

// runErr turns a command that could not run (or was interrupted) into a
// FAILED event saying why: "command timed out", "cancelled", or the
// cause the caller cancelled with ("server shutdown"). It returns false
// for a command that never started, which gets no event.
func runErr(err error) (exe.Event, bool) {
	var unreachable *unreachableError
	var notStarted *notStartedError
	var stop *stopError
	suffix := ""
	if errors.As(err, &stop) {
		suffix = "; " + stop.reason
		err = stop.cause
	}
	switch {
	case errors.As(err, &notStarted):
		return exe.Event{}, false
	case errors.As(err, &unreachable):
		return exe.Event{Status: exe.HostUnreachable, Msg: unreachable.Error()}, true
	case errors.Is(err, context.DeadlineExceeded):
		return exe.Event{Status: exe.HostFailed, Msg: "command timed out" + suffix}, true
	case errors.Is(err, context.Canceled):
		return exe.Event{Status: exe.HostFailed, Msg: "cancelled" + suffix}, true
	}
	return exe.Event{Status: exe.HostFailed, Msg: err.Error() + suffix}, true
}

// Ping checks each host answers. A local connection always does; it is
// not worth a process.
func (x *Executor) Ping(ctx context.Context, hosts []string, emit exe.Emit) error {
	return x.each(ctx, hosts, emit, single(func(ctx context.Context, c conn) (exe.Event, bool) {
		if isLocal(c) {
			return exe.Event{Status: exe.HostOK}, true
		}
		res, err := c.run(ctx, command{script: "true", raw: true}, x.cfg.OutputCap)
		if err != nil {
			return runErr(err)
		}
		if res.rtc != 0 {
			return exe.Event{Status: exe.HostFailed, Msg: fmt.Sprintf("ping command exited %d", res.rtc)}, true
		}
		return exe.Event{Status: exe.HostOK}, true
	}))
}

// Facter gathers facts with one embedded script that prints JSON.
func (x *Executor) Facter(ctx context.Context, hosts []string, emit exe.Emit) error {
	return x.each(ctx, hosts, emit, single(func(ctx context.Context, c conn) (exe.Event, bool) {
		// The facts document is never cut: a cut JSON is no facts at all.
		res, err := c.run(ctx, command{script: factsScript}, DefaultOutputCap)
		if err != nil {
			return runErr(err)
		}
		if res.rtc != 0 {
			return exe.Event{Status: exe.HostFailed, Msg: fmt.Sprintf("facts script exited %d: %s", res.rtc, firstLine(res.stderr))}, true
		}
		var facts map[string]any
		if err := json.Unmarshal([]byte(res.stdout), &facts); err != nil {
			return exe.Event{Status: exe.HostFailed, Msg: "facts script printed invalid JSON: " + err.Error()}, true
		}
		return exe.Event{Status: exe.HostOK, Facts: facts}, true
	}))
}

// Service brings a service to the desired state with the embedded service
// script: CHANGED when it acted, OK when nothing needed doing.
func (x *Executor) Service(ctx context.Context, hosts []string, args exe.ServiceArgs, emit exe.Emit) error {
	if !exe.ValidServiceName(args.Name) {
		return exe.Errorf(exe.ErrInvalid, "name: %q is not a valid service name", args.Name)
	}
	action := args.State.String()
	if args.State == exe.ServiceRestarted && args.Graceful {
		action = "reloaded"
	}
	if args.State < exe.ServiceStarted || args.State > exe.ServiceRestarted {
		return exe.Errorf(exe.ErrInvalid, "state: must be 0, 1 or 2")
	}
	return x.each(ctx, hosts, emit, single(func(ctx context.Context, c conn) (exe.Event, bool) {
		res, err := c.run(ctx, command{script: serviceScript, args: []string{args.Name, action}}, x.cfg.OutputCap)
		if err != nil {
			ev, ok := runErr(err)
			if res.stdout != "" || res.stderr != "" {
				// What the service manager printed before the interruption.
				ev.Exec, ev.Truncated = &exe.ExecResult{RTC: -1, Stdout: res.stdout, Stderr: res.stderr}, res.truncated
			}
			return ev, ok
		}
		if res.rtc != 0 {
			msg := firstLine(res.stderr)
			if msg == "" {
				msg = firstLine(res.stdout)
			}
			return exe.Event{Status: exe.HostFailed, Msg: fmt.Sprintf("%s %s failed (exit %d): %s", action, args.Name, res.rtc, msg)}, true
		}
		if strings.TrimSpace(lastLine(res.stdout)) == "ok" {
			return exe.Event{Status: exe.HostOK}, true
		}
		return exe.Event{Status: exe.HostChanged}, true
	}))
}

// Execute runs args.Cmd with sh -c on each host.
func (x *Executor) Execute(ctx context.Context, hosts []string, args exe.ExecuteArgs, emit exe.Emit) error {
	return x.each(ctx, hosts, emit, single(func(ctx context.Context, c conn) (exe.Event, bool) {
		// The command arrives as data ("$1") and is evaluated with no
		// positional parameters, as sh -c would run it.
		res, err := c.run(ctx, command{script: executeScript, args: []string{args.Cmd}}, x.cfg.OutputCap)
		if err != nil {
			// An interrupted command keeps what it printed so far.
			ev, ok := runErr(err)
			ev.Exec = &exe.ExecResult{RTC: -1, Stdout: res.stdout, Stderr: res.stderr}
			ev.Truncated = res.truncated
			return ev, ok
		}
		ev := exe.Event{Status: exe.HostChanged, Truncated: res.truncated,
			Exec: &exe.ExecResult{RTC: res.rtc, Stdout: res.stdout, Stderr: res.stderr}}
		if res.rtc != 0 {
			ev.Status = exe.HostFailed
			ev.Msg = fmt.Sprintf("command exited %d", res.rtc)
		}
		return ev, true
	}))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
