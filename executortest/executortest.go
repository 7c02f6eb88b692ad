// Package executortest is the conformance suite every exe.Executor runs:
// the rules of exe.Executor's documentation that the Engine, the Runner and
// the API rely on, checked against the real executor. Run it in process and
// through the plugin protocol (executor.TestClient), so that an executor
// behaves the same whether it is embedded or a plugin:
//
//	func TestConformance(t *testing.T) {
//		executortest.Run(t, executortest.Options{
//			New:   func(t *testing.T) exe.Executor { return myExecutor(t) },
//			Hosts: []string{"web1", "web2"},
//		})
//	}
//
// The suite needs hosts on which execute runs POSIX shell commands (all of
// exed's executors do). Every operation the executor declares (exe.Only,
// or exe.Capabilities of its own) must run, and honour a context
// cancelled before it starts; every other must answer exe.ErrNotSupported.
// A failure says which operation to list in exe.Only or to write. Every
// event of every check must hold UTF-8 strings only. The checks that need
// a command to run (a failing command, output that is not UTF-8, a cancel
// under way) are skipped, saying so, for an executor without execute.
package executortest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
)

// Options describe the executor under test.
type Options struct {
	// New returns the executor, ready to use; the suite calls it once per
	// check. Required.
	New func(t *testing.T) exe.Executor
	// Hosts are two or more inventory hosts the executor reaches. Required.
	Hosts []string
	// Unknown is a host name that is not in the inventory; default
	// "no-such-host.invalid".
	Unknown string
	// CancelWithin bounds how long an operation may run on after its
	// context is cancelled; default 15s. It is a bound for a failure
	// message, not a measurement: a command sleeps 10 times as long.
	CancelWithin time.Duration
}

// Run runs every check as a subtest of t.
func Run(t *testing.T, opts Options) {
	t.Helper()
	if opts.New == nil || len(opts.Hosts) < 2 {
		t.Fatal("executortest: Options need New and at least two Hosts")
	}
	if opts.Unknown == "" {
		opts.Unknown = "no-such-host.invalid"
	}
	if opts.CancelWithin <= 0 {
		opts.CancelWithin = 15 * time.Second
	}
	s := &suite{opts: opts}
	t.Run("MatchIsASortedUnion", s.match)
	t.Run("OneEventPerHost", s.oneEventPerHost)
	t.Run("FailedCommandIsAnEvent", s.failedCommand)
	t.Run("BytesThatAreNotUTF8", s.invalidUTF8)
	t.Run("CancellationIsHonoured", s.cancellation)
	t.Run("CancelledBeforeStart", s.cancelledBeforeStart)
	t.Run("UnsupportedOperations", s.unsupported)
}

// declared says why op counts as declared and what to do when the
// executor does not perform it.
func declared(x exe.Executor, op exe.Operate) string {
	if _, ok := x.(exe.Capabilities); !ok {
		return fmt.Sprintf("%T has no exe.Capabilities, so every operation counts as declared: embed exe.Only listing the operations it performs (e.g. exe.Only{exe.OpPing, exe.OpExecute}), which also answers the others", x)
	}
	return fmt.Sprintf("%T declares it (Supports): write %s, or leave exe.%s out of its exe.Only", x, opMethod(op), opConst(op))
}

// refusedDeclared reports, and is true, when err says that x does not
// perform op, which it declares.
func refusedDeclared(t *testing.T, x exe.Executor, op exe.Operate, err error) bool {
	t.Helper()
	if !errors.Is(err, exe.ErrNotSupported) {
		return false
	}
	t.Errorf("%s answers exe.ErrNotSupported (%v), yet %s", op, err, declared(x, op))
	return true
}

// notDeclared says what to do about an operation the executor does not
// declare but answers otherwise than with exe.ErrNotSupported.
func notDeclared(x exe.Executor, op exe.Operate) string {
	return fmt.Sprintf("if %T performs %s, list exe.%s in its exe.Only (requests for it are refused, 501, until then); if not, leave %s to exe.Only, which answers exe.ErrNotSupported", x, op, opConst(op), opMethod(op))
}

// opConst is the name of op's constant in package exe: OpExecute.
func opConst(op exe.Operate) string { return "Op" + opMethod(op) }

// opMethod is the name of op's method in exe.Executor: Execute.
func opMethod(op exe.Operate) string {
	if op == "" {
		return ""
	}
	return strings.ToUpper(string(op[:1])) + string(op[1:])
}

type suite struct{ opts Options }

// recorder collects events and fails the test on an emit after the
// operation returned (the Runner would store it into a finished job).
type recorder struct {
	t      *testing.T
	mu     sync.Mutex
	events []exe.Event
	done   bool
}

func (r *recorder) emit(ev exe.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		r.t.Errorf("event emitted after the operation returned: %+v", ev)
	}
	if field := notUTF8(ev); field != "" {
		r.t.Errorf("event of %q: %s is not UTF-8: %+v", ev.Host, field, ev)
	}
	r.events = append(r.events, ev)
}

// notUTF8 names the first of ev's strings that is not UTF-8, or "".
func notUTF8(ev exe.Event) string {
	fields := []struct{ name, v string }{{"host", ev.Host}, {"name", ev.Name}, {"msg", ev.Msg}}
	if ev.Exec != nil {
		fields = append(fields, struct{ name, v string }{"stdout", ev.Exec.Stdout}, struct{ name, v string }{"stderr", ev.Exec.Stderr})
	}
	for _, f := range fields {
		if !utf8.ValidString(f.v) {
			return f.name
		}
	}
	if !valueUTF8(ev.Facts) {
		return "facts"
	}
	if !valueUTF8(ev.Extra) {
		return "extra"
	}
	return ""
}

// valueUTF8 reports whether every string in v (keys included) is UTF-8.
func valueUTF8(v any) bool {
	switch v := v.(type) {
	case string:
		return utf8.ValidString(v)
	case map[string]any:
		for k, e := range v {
			if !utf8.ValidString(k) || !valueUTF8(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !valueUTF8(e) {
				return false
			}
		}
	}
	return true
}

func (r *recorder) finish() []exe.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	return append([]exe.Event(nil), r.events...)
}

// perform runs op on hosts; a panic is a failure with its value.
func perform(ctx context.Context, t *testing.T, x exe.Executor, req exe.Request) (events []exe.Event, err error) {
	t.Helper()
	r := &recorder{t: t}
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%s panicked: %v", req.Operate, p)
			err = fmt.Errorf("panic: %v", p)
		}
		events = r.finish()
	}()
	return nil, exe.Perform(ctx, x, nil, req, r.emit)
}

// byHost groups the events of hosts (announcements left out) and reports
// events for hosts that were not asked for.
func byHost(t *testing.T, hosts []string, events []exe.Event) map[string][]exe.Event {
	t.Helper()
	want := map[string]bool{}
	for _, h := range hosts {
		want[h] = true
	}
	out := map[string][]exe.Event{}
	for _, ev := range events {
		if ev.Host == exe.AnnounceHost {
			continue
		}
		if !want[ev.Host] {
			t.Errorf("event for %q, which the operation was not given: %+v", ev.Host, ev)
		}
		out[ev.Host] = append(out[ev.Host], ev)
	}
	return out
}

func (s *suite) match(t *testing.T) {
	x := s.opts.New(t)
	ctx := context.Background()
	hosts := append([]string(nil), s.opts.Hosts...)
	sort.Strings(hosts)
	all, err := x.Match(ctx, "all")
	if err != nil {
		t.Fatalf("Match(all): %v", err)
	}
	if !sort.StringsAreSorted(all) {
		t.Errorf("Match(all) is not sorted: %v", all)
	}
	for _, h := range hosts {
		if !contains(all, h) {
			t.Errorf("Match(all) lacks %s: %v", h, all)
		}
	}
	// The Engine checks a request's targets with one comma-joined Match.
	got, err := x.Match(ctx, strings.Join(append(hosts, hosts[0]), ","))
	if err != nil {
		t.Fatalf("Match(union): %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(hosts) {
		t.Errorf("Match(%q) = %v, want the sorted union %v", strings.Join(hosts, ","), got, hosts)
	}
	got, err = x.Match(ctx, s.opts.Unknown)
	if err != nil {
		t.Errorf("Match of a name that is not in the inventory: %v, want an empty list", err)
	}
	if len(got) != 0 {
		t.Errorf("Match(%q) = %v, want nothing", s.opts.Unknown, got)
	}
}

func (s *suite) oneEventPerHost(t *testing.T) {
	x := s.opts.New(t)
	for _, req := range []exe.Request{
		{Operate: exe.OpPing},
		{Operate: exe.OpFacter},
		{Operate: exe.OpExecute, Execute: exe.ExecuteArgs{Cmd: "echo conformance"}},
	} {
		if !exe.Supports(x, req.Operate) {
			continue
		}
		req.Targets = s.opts.Hosts
		events, err := perform(context.Background(), t, x, req)
		if refusedDeclared(t, x, req.Operate, err) {
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", req.Operate, err)
			continue
		}
		got := byHost(t, s.opts.Hosts, events)
		for _, h := range s.opts.Hosts {
			evs := got[h]
			if len(evs) != 1 {
				t.Errorf("%s: %d events for %s, want one: %+v", req.Operate, len(evs), h, evs)
				continue
			}
			ev := evs[0]
			if ev.Status.Failure() {
				t.Errorf("%s on %s failed: %+v", req.Operate, h, ev)
				continue
			}
			switch req.Operate {
			case exe.OpFacter:
				if ev.Facts == nil {
					t.Errorf("facter on %s: no facts: %+v", h, ev)
				}
			case exe.OpExecute:
				if ev.Exec == nil || ev.Exec.RTC != 0 || strings.TrimSpace(ev.Exec.Stdout) != "conformance" {
					t.Errorf("execute on %s: want rtc 0 and stdout \"conformance\": %+v", h, ev)
				}
			}
		}
	}
}

// skipWithoutExecute skips a check that needs commands to run.
func skipWithoutExecute(t *testing.T, x exe.Executor, what string) {
	t.Helper()
	if !exe.Supports(x, exe.OpExecute) {
		t.Skipf("%T does not declare execute, which %s needs (CancelledBeforeStart checks its operations' cancellation)", x, what)
	}
}

func (s *suite) failedCommand(t *testing.T) {
	x := s.opts.New(t)
	skipWithoutExecute(t, x, "a failing command")
	events, err := perform(context.Background(), t, x, exe.Request{Operate: exe.OpExecute, Targets: s.opts.Hosts,
		Execute: exe.ExecuteArgs{Cmd: "echo out; echo err >&2; exit 3"}})
	if refusedDeclared(t, x, exe.OpExecute, err) {
		return
	}
	if err != nil {
		t.Fatalf("a command that exits 3 is a host's result, not an error: %v", err)
	}
	for h, evs := range byHost(t, s.opts.Hosts, events) {
		if len(evs) != 1 || evs[0].Status != exe.HostFailed || evs[0].Exec == nil || evs[0].Exec.RTC != 3 {
			t.Errorf("%s: want one FAILED event with rtc 3: %+v", h, evs)
			continue
		}
		if !strings.Contains(evs[0].Exec.Stdout, "out") || !strings.Contains(evs[0].Exec.Stderr, "err") {
			t.Errorf("%s: the output of a failed command is kept: %+v", h, evs[0])
		}
	}
}

// invalidUTF8 has every host print bytes that are not UTF-8: the operation
// must not fail for it, and every string must reach the caller as UTF-8.
func (s *suite) invalidUTF8(t *testing.T) {
	x := s.opts.New(t)
	skipWithoutExecute(t, x, "output that is not UTF-8")
	events, err := perform(context.Background(), t, x, exe.Request{Operate: exe.OpExecute, Targets: s.opts.Hosts,
		Execute: exe.ExecuteArgs{Cmd: `printf 'caf\351\n'; printf '\377\376 err' >&2`}})
	if refusedDeclared(t, x, exe.OpExecute, err) {
		return
	}
	if err != nil {
		t.Fatalf("output that is not UTF-8 failed the operation: %v", err)
	}
	got := byHost(t, s.opts.Hosts, events)
	for _, h := range s.opts.Hosts {
		evs := got[h]
		if len(evs) != 1 || evs[0].Exec == nil {
			t.Errorf("%s: want one event with its output: %+v", h, evs)
			continue
		}
		ev := evs[0]
		for name, v := range map[string]string{"stdout": ev.Exec.Stdout, "stderr": ev.Exec.Stderr, "msg": ev.Msg, "name": ev.Name} {
			if !utf8.ValidString(v) {
				t.Errorf("%s: %s is not UTF-8: %q", h, name, v)
			}
		}
		if !strings.HasPrefix(ev.Exec.Stdout, "caf") {
			t.Errorf("%s: stdout lost its text: %q", h, ev.Exec.Stdout)
		}
	}
}

func (s *suite) cancellation(t *testing.T) {
	x := s.opts.New(t)
	skipWithoutExecute(t, x, "a cancel under way")
	ctx, cancel := context.WithCancel(context.Background())
	sleep := int(s.opts.CancelWithin.Seconds() * 10)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := perform(ctx, t, x, exe.Request{Operate: exe.OpExecute, Targets: s.opts.Hosts,
			Execute: exe.ExecuteArgs{Cmd: fmt.Sprintf("sleep %d", sleep)}})
		done <- err
	}()
	// Cancel once the commands are under way: no operation may outlive its
	// context, whenever the cancel comes.
	time.AfterFunc(500*time.Millisecond, cancel)
	select {
	case err := <-done:
		if refusedDeclared(t, x, exe.OpExecute, err) {
			return
		}
		if time.Since(start) < 400*time.Millisecond {
			t.Errorf("execute of sleep %d returned before it was cancelled", sleep)
		}
	case <-time.After(s.opts.CancelWithin):
		t.Fatalf("execute went on %s after its context was cancelled", s.opts.CancelWithin)
	}
}

// probe is a request for op on the first host, with arguments that
// change nothing should it run.
func (s *suite) probe(op exe.Operate) exe.Request {
	return exe.Request{Operate: op, Targets: s.opts.Hosts[:1],
		Service: exe.ServiceArgs{Name: "executortest-no-such-service", State: exe.ServiceStarted}, Execute: exe.ExecuteArgs{Cmd: "true"},
		Deploy: exe.DeployArgs{Role: "executortest-no-such-role"}}
}

// cancelledBeforeStart calls every declared operation with a context
// cancelled before the call, as a job cancelled or shut down before its
// run reaches the executor: each must return within CancelWithin, with
// no more than one event per host, and must not answer
// exe.ErrNotSupported (the operation is declared).
func (s *suite) cancelledBeforeStart(t *testing.T) {
	x := s.opts.New(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("executortest: cancelled before start"))
	for _, op := range exe.ExecutorOperations {
		if !exe.Supports(x, op) {
			continue
		}
		type result struct {
			events []exe.Event
			err    error
		}
		done := make(chan result, 1)
		go func() {
			events, err := perform(ctx, t, x, s.probe(op))
			done <- result{events, err}
		}()
		select {
		case r := <-done:
			refusedDeclared(t, x, op, r.err)
			for h, evs := range byHost(t, s.opts.Hosts[:1], r.events) {
				if op != exe.OpDeploy && len(evs) > 1 {
					t.Errorf("%s on %s with a cancelled context: %d events, want one at most: %+v", op, h, len(evs), evs)
				}
			}
		case <-time.After(s.opts.CancelWithin):
			t.Fatalf("%s with a context cancelled before the call went on for %s", op, s.opts.CancelWithin)
		}
	}
}

func (s *suite) unsupported(t *testing.T) {
	x := s.opts.New(t)
	for _, op := range exe.ExecutorOperations {
		if exe.Supports(x, op) {
			continue
		}
		events, err := perform(context.Background(), t, x, s.probe(op))
		if !errors.Is(err, exe.ErrNotSupported) {
			t.Errorf("%s is not declared: want exe.ErrNotSupported, got %v: %s", op, err, notDeclared(x, op))
		}
		if len(events) > 0 {
			t.Errorf("%s is not declared but emitted %+v", op, events)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
