package plugintest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Executor is an executor for exed's own plugin tests: it behaves
// on request in the ways a plugin can misbehave. Its hosts are "a", "b"
// and "c"; Execute's command selects the behaviour:
//
//	stream N  emits N events per host, numbered in Extra["n"]
//	gate F    emits one event, reads the named pipe F (so waits for the
//	          test to write it), emits a second
//	block     emits one event named "started", then waits for
//	          cancellation, records it as the file "cancelled" in
//	          [testexec] marker_dir, and emits a last event named
//	          "stopped" whose msg is the cancel's cause
//	linger D  emits one event, waits for cancellation, then goes on
//	          working for the duration D (as an executor ends its
//	          commands) and records that it finished as the file
//	          "lingered" in marker_dir
//	crash     emits one event, then exits with status 3
//	print H   emits one event per host whose every string (name, msg,
//	          stdout, stderr, facts and extra keys and values) is the
//	          bytes of hex string H, as a host's output may be
//
//	fail      returns an error
//	error H   returns an ErrInvalid error whose message is the bytes of H
//	say X     writes X to stderr and Logger, and returns
//	refuse X  is refused by ValidateRequest (exe.RequestValidator) with
//	          the message "cmd: refused: X"; Execute runs it as any other
//
// Match("hex:H") returns one host named by the bytes of H. A config key
// "fail" makes Configure refuse. Its metrics (Gather, which the plugin
// protocol serves) count its calls: testexec_calls_total{operation}, and
// testexec_matches_total. It is an exe.MatchVersioner whose version is
// the number of Configure calls.
type Executor struct {
	Logger    hclog.Logger
	markerDir string

	metricsOnce sync.Once
	reg         *prometheus.Registry
	calls       *prometheus.CounterVec
	matchesOnce sync.Once
	matches     prometheus.Counter
	configured  atomic.Uint64
}

// metrics returns the registry and counters, made on first use.
func (x *Executor) metrics() (*prometheus.Registry, *prometheus.CounterVec) {
	x.metricsOnce.Do(func() {
		x.reg = prometheus.NewRegistry()
		x.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "testexec_calls_total",
			Help: "Operations testexec was called for."}, []string{"operation"})
		x.reg.MustRegister(x.calls)
	})
	return x.reg, x.calls
}

// called counts a call of op.
func (x *Executor) called(op exe.Operate) {
	_, calls := x.metrics()
	calls.WithLabelValues(string(op)).Inc()
}

// Gather implements executor.Gatherer.
func (x *Executor) Gather() ([]*dto.MetricFamily, error) {
	reg, _ := x.metrics()
	return reg.Gather()
}

var hosts = []string{"a", "b", "c"}

// Configure implements executor.Configurer.
func (x *Executor) Configure(_ context.Context, cfg map[string]string) error {
	if v, ok := cfg["fail"]; ok {
		return exe.Errorf(exe.ErrInvalid, "[testexec] fail: %q refused", v)
	}
	x.markerDir = cfg["marker_dir"]
	x.configured.Add(1)
	return nil
}

// MatchVersion implements exe.MatchVersioner.
func (x *Executor) MatchVersion() (uint64, bool) { return x.configured.Load(), true }

func (x *Executor) Match(_ context.Context, pattern string) ([]string, error) {
	// Registered at the first Match: a plugin that was asked none
	// gathers one family, as before the counter existed.
	x.matchesOnce.Do(func() {
		reg, _ := x.metrics()
		x.matches = prometheus.NewCounter(prometheus.CounterOpts{Name: "testexec_matches_total",
			Help: "Match calls testexec answered."})
		reg.MustRegister(x.matches)
	})
	x.matches.Inc()
	if pattern == "all" {
		return hosts, nil
	}
	if h, ok := strings.CutPrefix(pattern, "hex:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, exe.Errorf(exe.ErrInvalid, "pattern: %v", err)
		}
		return []string{string(b)}, nil
	}
	if strings.HasPrefix(pattern, "~") {
		return nil, exe.Errorf(exe.ErrInvalid, "pattern: regexes are not supported here")
	}
	out := []string{}
	for _, h := range hosts {
		for _, p := range strings.Split(pattern, ",") {
			if h == p {
				out = append(out, h)
				break
			}
		}
	}
	return out, nil
}

// ValidateRequest implements exe.RequestValidator.
func (x *Executor) ValidateRequest(_ context.Context, req exe.Request) error {
	if arg, ok := strings.CutPrefix(req.Execute.Cmd, "refuse "); ok && req.Operate == exe.OpExecute {
		return exe.Errorf(exe.ErrInvalid, "cmd: refused: %s", arg)
	}
	return nil
}

// Validates implements exe.ValidationScope: ValidateRequest refuses
// executes only.
func (x *Executor) Validates(op exe.Operate) bool { return op == exe.OpExecute }

func (x *Executor) Ping(_ context.Context, hs []string, emit exe.Emit) error {
	x.called(exe.OpPing)
	for _, h := range hs {
		emit(exe.Event{Host: h, Status: exe.HostOK})
	}
	return nil
}

func (x *Executor) Facter(_ context.Context, hs []string, emit exe.Emit) error {
	for _, h := range hs {
		emit(exe.Event{Host: h, Status: exe.HostOK, Facts: map[string]any{"hostname": h, "cpus": 2.0}})
	}
	return nil
}

func (x *Executor) Service(context.Context, []string, exe.ServiceArgs, exe.Emit) error {
	return exe.Errorf(exe.ErrNotSupported, "testexec manages no services")
}

func (x *Executor) Deploy(context.Context, []string, exe.DeployArgs, exe.Emit) error {
	return exe.ErrNotSupported
}

func (x *Executor) Execute(ctx context.Context, hs []string, args exe.ExecuteArgs, emit exe.Emit) error {
	x.called(exe.OpExecute)
	verb, arg, _ := strings.Cut(args.Cmd, " ")
	switch verb {
	case "stream":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return exe.Errorf(exe.ErrInvalid, "stream: %v", err)
		}
		for i := 1; i <= n; i++ {
			for _, h := range hs {
				emit(exe.Event{Host: h, Status: exe.HostChanged, Extra: map[string]any{"n": float64(i)},
					Exec: &exe.ExecResult{Stdout: "x"}})
			}
		}
		return nil
	case "gate":
		emit(exe.Event{Host: hs[0], Status: exe.HostChanged, Name: "before"})
		if _, err := os.ReadFile(arg); err != nil {
			return err
		}
		emit(exe.Event{Host: hs[0], Status: exe.HostChanged, Name: "after"})
		return nil
	case "block":
		emit(exe.Event{Host: hs[0], Status: exe.HostChanged, Name: "started"})
		<-ctx.Done()
		if x.markerDir != "" {
			_ = os.WriteFile(filepath.Join(x.markerDir, "cancelled"), []byte(ctx.Err().Error()), 0o644)
		}
		emit(exe.Event{Host: hs[0], Status: exe.HostFailed, Name: "stopped", Msg: context.Cause(ctx).Error()})
		return ctx.Err()
	case "linger":
		d, err := time.ParseDuration(arg)
		if err != nil {
			return exe.Errorf(exe.ErrInvalid, "linger: %v", err)
		}
		emit(exe.Event{Host: hs[0], Status: exe.HostChanged, Name: "started"})
		<-ctx.Done()
		time.Sleep(d) // the work a cancel still has to do
		return os.WriteFile(filepath.Join(x.markerDir, "lingered"), []byte(arg), 0o644)
	case "crash":
		emit(exe.Event{Host: hs[0], Status: exe.HostChanged, Name: "last words"})
		fmt.Fprintln(os.Stderr, "testexec: crashing on request")
		os.Exit(3)
	case "print":
		b, err := hex.DecodeString(arg)
		if err != nil {
			return exe.Errorf(exe.ErrInvalid, "print: %v", err)
		}
		out := string(b)
		for _, h := range hs {
			emit(exe.Event{Host: h, Status: exe.HostChanged, Name: out, Msg: out,
				Exec:  &exe.ExecResult{Stdout: out, Stderr: out},
				Facts: map[string]any{out: out, "nested": map[string]any{"list": []any{out}, out: []string{out}}},
				Extra: map[string]any{"x-" + out: out}})
		}
		return nil
	case "say":
		fmt.Fprintln(os.Stderr, "stderr: "+arg)
		if x.Logger != nil {
			x.Logger.Warn("hclog: "+arg, "host", hs[0])
		}
		emit(exe.Event{Host: hs[0], Status: exe.HostChanged})
		return nil
	case "error":
		b, err := hex.DecodeString(arg)
		if err != nil {
			return exe.Errorf(exe.ErrInvalid, "error: %v", err)
		}
		return exe.Errorf(exe.ErrInvalid, "%s", b)
	case "fail":
		return errors.New("testexec: failed on request")
	}
	for _, h := range hs {
		emit(exe.Event{Host: h, Status: exe.HostChanged, Exec: &exe.ExecResult{Stdout: args.Cmd}})
	}
	return nil
}

// NotUTF8 lists the strings of ev that are not valid UTF-8: host, name,
// msg, stdout, stderr, and the keys and string values of Facts and Extra
// at any depth. Tests of what carries a host's output expect none.
func NotUTF8(ev exe.Event) []string {
	strs := []string{ev.Host, ev.Name, ev.Msg}
	if ev.Exec != nil {
		strs = append(strs, ev.Exec.Stdout, ev.Exec.Stderr)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			strs = append(strs, v)
		case map[string]any:
			for k, x := range v {
				strs = append(strs, k)
				walk(x)
			}
		case map[string]string:
			for k, x := range v {
				strs = append(strs, k, x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case []string:
			strs = append(strs, v...)
		}
	}
	walk(ev.Facts)
	walk(ev.Extra)
	var bad []string
	for _, s := range strs {
		if !utf8.ValidString(s) {
			bad = append(bad, s)
		}
	}
	return bad
}
