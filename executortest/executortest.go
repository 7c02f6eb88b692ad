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
// exed's executors do); operations the executor does not declare with
// exe.Capabilities are only checked to answer exe.ErrNotSupported.
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
	t.Run("UnsupportedOperations", s.unsupported)
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
	r.events = append(r.events, ev)
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

func (s *suite) failedCommand(t *testing.T) {
	x := s.opts.New(t)
	if !exe.Supports(x, exe.OpExecute) {
		t.Skip("execute is not supported")
	}
	events, err := perform(context.Background(), t, x, exe.Request{Operate: exe.OpExecute, Targets: s.opts.Hosts,
		Execute: exe.ExecuteArgs{Cmd: "echo out; echo err >&2; exit 3"}})
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
	if !exe.Supports(x, exe.OpExecute) {
		t.Skip("execute is not supported")
	}
	events, err := perform(context.Background(), t, x, exe.Request{Operate: exe.OpExecute, Targets: s.opts.Hosts,
		Execute: exe.ExecuteArgs{Cmd: `printf 'caf\351\n'; printf '\377\376 err' >&2`}})
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
	if !exe.Supports(x, exe.OpExecute) {
		t.Skip("execute is not supported")
	}
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
	case <-done:
		if time.Since(start) < 400*time.Millisecond {
			t.Errorf("execute of sleep %d returned before it was cancelled", sleep)
		}
	case <-time.After(s.opts.CancelWithin):
		t.Fatalf("execute went on %s after its context was cancelled", s.opts.CancelWithin)
	}
}

func (s *suite) unsupported(t *testing.T) {
	x := s.opts.New(t)
	for _, op := range exe.ExecutorOperations {
		if exe.Supports(x, op) {
			continue
		}
		req := exe.Request{Operate: op, Targets: s.opts.Hosts[:1],
			Service: exe.ServiceArgs{Name: "x", State: exe.ServiceStarted}, Execute: exe.ExecuteArgs{Cmd: "true"},
			Deploy: exe.DeployArgs{Role: "x"}}
		events, err := perform(context.Background(), t, x, req)
		if !errors.Is(err, exe.ErrNotSupported) {
			t.Errorf("%s is not declared: want exe.ErrNotSupported, got %v", op, err)
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
