// Package rollingrestart is the rolling-restart task: it restarts a service
// on the target hosts a batch at a time through whatever executor the server
// runs, health-checks each restarted host, and stops the rollout when more
// hosts failed than max_fail allows, the way Ansible's serial and
// max_fail_percentage do. exed serves it as a task plugin
// (`exed plugin task rollingrestart`).
package rollingrestart

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/0ops/exed/exe"
)

// Task implements exe.Task.
type Task struct{}

var _ exe.Task = Task{}

func ptr(f float64) *float64 { return &f }

// countOrPercent accepts a whole number or a percentage string ("25%").
const countOrPercent = `^[0-9]+%$`

// Info describes the task and its options.
func (Task) Info(context.Context) (exe.TaskInfo, error) {
	return exe.TaskInfo{
		Type:        "rollingrestart",
		Description: "restart a service a batch of hosts at a time, health-checking each host and stopping when more hosts fail than max_fail allows",
		Options: exe.Schema{Type: "object", Required: []string{"service"}, Properties: map[string]exe.Property{
			"service":         {Type: []string{"string"}, Description: "the service to restart", Pattern: `^[A-Za-z0-9_][A-Za-z0-9_.@:-]*$`},
			"batch":           {Type: []string{"integer", "string"}, Description: `hosts per batch, or a percentage of the targets ("25%")`, Default: 1.0, Minimum: ptr(1), Pattern: countOrPercent},
			"graceful":        {Type: []string{"boolean"}, Description: "reload instead of restart", Default: false},
			"pause":           {Type: []string{"number"}, Description: "seconds to wait between batches", Default: 0.0, Minimum: ptr(0), Maximum: ptr(maxPause)},
			"health_cmd":      {Type: []string{"string"}, Description: "command run on each restarted host; a non-zero exit is unhealthy"},
			"health_retries":  {Type: []string{"integer"}, Description: "further attempts of an unhealthy check", Default: 0.0, Minimum: ptr(0), Maximum: ptr(maxHealthRetries)},
			"health_interval": {Type: []string{"number"}, Description: "seconds between health check attempts", Default: 1.0, Minimum: ptr(0), Maximum: ptr(maxHealthInterval)},
			"max_fail":        {Type: []string{"integer", "string"}, Description: `hosts (or a percentage, "10%") that may fail before the rollout stops`, Default: 0.0, Minimum: ptr(0), Pattern: countOrPercent},
		}},
	}, nil
}

// The options' upper bounds: a day's pause, an hour between checks, a
// thousand retries. Beyond them a value is a mistake, and a number of
// seconds past about 292 years would overflow a time.Duration (to a
// zero or negative wait).
const (
	maxPause          = 86400
	maxHealthInterval = 3600
	maxHealthRetries  = 1000
)

// seconds converts a validated option to a duration; a value out of
// [0, max] (options that did not go through the schema) is an error.
func seconds(opts map[string]any, name string, max float64) (time.Duration, error) {
	f, ok := opts[name].(float64)
	if !ok {
		return 0, nil
	}
	if !(f >= 0 && f <= max) { // also refuses NaN
		return 0, exe.Errorf(exe.ErrInvalid, "taskopts: option %q must be from 0 to %v", name, max)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// options are the validated options.
type options struct {
	service        string
	batch          int
	graceful       bool
	pause          time.Duration
	healthCmd      string
	healthRetries  int
	healthInterval time.Duration
	maxFail        int
}

// resolve turns a count or percentage of n into a count: percentages of
// batch round up (at least 1), of max_fail round down.
func resolve(v any, n int, roundUp bool) (int, error) {
	switch t := v.(type) {
	case float64:
		return int(t), nil
	case string:
		p, err := strconv.Atoi(strings.TrimSuffix(t, "%"))
		if err != nil || !strings.HasSuffix(t, "%") {
			return 0, fmt.Errorf("%q is not a percentage", t)
		}
		f := float64(n) * float64(p) / 100
		if roundUp {
			return max(1, int(math.Ceil(f))), nil
		}
		return int(math.Floor(f)), nil
	}
	return 0, fmt.Errorf("%v is not a count", v)
}

func parse(opts map[string]any, hosts int) (options, error) {
	o := options{healthInterval: time.Second}
	var err error
	o.service, _ = opts["service"].(string)
	if o.service == "" {
		return o, exe.Errorf(exe.ErrInvalid, "taskopts: option \"service\" is required")
	}
	if o.batch, err = resolve(opts["batch"], hosts, true); err != nil || o.batch < 1 {
		return o, exe.Errorf(exe.ErrInvalid, "taskopts: option \"batch\": %v", err)
	}
	if o.maxFail, err = resolve(opts["max_fail"], hosts, false); err != nil {
		return o, exe.Errorf(exe.ErrInvalid, "taskopts: option \"max_fail\": %v", err)
	}
	o.graceful, _ = opts["graceful"].(bool)
	if o.pause, err = seconds(opts, "pause", maxPause); err != nil {
		return o, err
	}
	o.healthCmd, _ = opts["health_cmd"].(string)
	if r, ok := opts["health_retries"].(float64); ok {
		if !(r >= 0 && r <= maxHealthRetries) {
			return o, exe.Errorf(exe.ErrInvalid, "taskopts: option \"health_retries\" must be from 0 to %v", maxHealthRetries)
		}
		o.healthRetries = int(r)
	}
	if o.healthInterval, err = seconds(opts, "health_interval", maxHealthInterval); err != nil {
		return o, err
	}
	return o, nil
}

// Run restarts the service batch by batch. Each batch is announced; each
// host's restart and health check are events of that host. When more hosts
// have failed than max_fail allows, the hosts not yet touched are reported
// SKIPPED and Run returns an error: the job ends Failure. A cancel
// interrupts the step under way: the hosts it stopped end FAILED with
// what they printed so far, and nothing further starts: the hosts of the
// later batches end SKIPPED "cancelled before start" (exe.NotStarted).
func (Task) Run(ctx context.Context, x exe.Executor, hosts []string, args exe.TaskArgs, emit exe.Emit) error {
	o, err := parse(args.Options, len(hosts))
	if err != nil {
		return err
	}
	batches := (len(hosts) + o.batch - 1) / o.batch
	failed := 0
	// untouched says the hosts of batches from b on never started: only
	// the task knows it (the job's Runner cannot).
	untouched := func(b int) error {
		cause := context.Cause(ctx)
		for _, h := range hosts[min(b*o.batch, len(hosts)):] {
			emit(exe.NotStarted(h, cause))
		}
		return cause
	}
	for b := 0; b < batches; b++ {
		if b > 0 && o.pause > 0 {
			select {
			case <-ctx.Done():
				return untouched(b)
			case <-time.After(o.pause):
			}
		}
		if err := ctx.Err(); err != nil {
			return untouched(b)
		}
		batch := hosts[b*o.batch : min((b+1)*o.batch, len(hosts))]
		emit(exe.Event{Host: exe.AnnounceHost, Status: exe.HostOK, Name: fmt.Sprintf("batch %d/%d", b+1, batches), Msg: strings.Join(batch, ", ")})
		healthy, err := restartBatch(ctx, x, batch, o, emit)
		if err != nil {
			if ctx.Err() != nil {
				untouched(b + 1)
			}
			return err
		}
		failed += len(batch) - len(healthy)
		if failed > o.maxFail {
			rest := hosts[min((b+1)*o.batch, len(hosts)):]
			msg := fmt.Sprintf("not restarted: the rollout stopped after %d failed hosts (max_fail %d)", failed, o.maxFail)
			for _, h := range rest {
				emit(exe.Event{Host: h, Status: exe.HostSkipped, Name: "restart", Msg: msg})
			}
			return fmt.Errorf("rollout stopped at batch %d/%d: %d hosts failed, max_fail is %d", b+1, batches, failed, o.maxFail)
		}
	}
	return nil
}

// restartBatch restarts the batch's hosts together, then health-checks
// the ones that restarted; it returns the hosts that are fine.
func restartBatch(ctx context.Context, x exe.Executor, batch []string, o options, emit exe.Emit) ([]string, error) {
	var mu sync.Mutex
	ok := map[string]bool{}
	err := x.Service(ctx, batch, exe.ServiceArgs{Name: o.service, State: exe.ServiceRestarted, Graceful: o.graceful}, func(ev exe.Event) {
		ev.Name = "restart"
		mu.Lock()
		ok[ev.Host] = ev.Status == exe.HostOK || ev.Status == exe.HostChanged
		mu.Unlock()
		emit(ev)
	})
	if ctx.Err() != nil {
		// The restarts it interrupted were reported; the hosts it never
		// started have no result to report.
		return nil, context.Cause(ctx)
	}
	if err != nil {
		return nil, err
	}
	var restarted []string
	for _, h := range batch {
		if ok[h] {
			restarted = append(restarted, h)
		} else if _, reported := ok[h]; !reported {
			emit(exe.Event{Host: h, Status: exe.HostUnreachable, Name: "restart", Msg: "no result was reported for this host"})
		}
	}
	if o.healthCmd == "" || len(restarted) == 0 {
		return restarted, nil
	}
	return healthCheck(ctx, x, restarted, o, emit)
}

// healthCheck runs health_cmd on hosts until each passes or has used its
// retries; one event per host with the last attempt's result.
func healthCheck(ctx context.Context, x exe.Executor, hosts []string, o options, emit exe.Emit) ([]string, error) {
	pending := hosts
	var healthy []string
	last := map[string]exe.Event{}
	for attempt := 0; attempt <= o.healthRetries && len(pending) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				for _, h := range pending {
					emit(unhealthyThen(ctx, h, last[h], attempt))
				}
				return nil, context.Cause(ctx)
			case <-time.After(o.healthInterval):
			}
		}
		var mu sync.Mutex
		this := map[string]exe.Event{}
		interrupted := map[string]bool{}
		err := x.Execute(ctx, pending, exe.ExecuteArgs{Cmd: o.healthCmd}, func(ev exe.Event) {
			mu.Lock()
			last[ev.Host], this[ev.Host] = ev, ev
			interrupted[ev.Host] = ctx.Err() != nil
			mu.Unlock()
		})
		if ctx.Err() != nil {
			// Each pending host ends with what the cancel left: this
			// attempt's result, its interruption as the executor reported
			// it (with the partial output), or, for a host this attempt
			// never reached, the earlier failures or no check at all.
			for _, h := range pending {
				ev, ok := this[h]
				prev, checked := last[h]
				switch {
				case ok && passed(ev):
					emit(exe.Event{Host: h, Status: exe.HostOK, Name: "health check", Exec: ev.Exec})
				case ok && interrupted[h]:
					emit(exe.Event{Host: h, Status: exe.HostFailed, Name: "health check", Msg: ev.Msg, Exec: ev.Exec, Truncated: ev.Truncated})
				case ok:
					emit(unhealthyThen(ctx, h, ev, attempt+1))
				case checked:
					emit(unhealthyThen(ctx, h, prev, attempt))
				default:
					skipped := exe.NotStarted(h, context.Cause(ctx))
					skipped.Name = "health check"
					emit(skipped)
				}
			}
			return nil, context.Cause(ctx)
		}
		if err != nil {
			return nil, err
		}
		var still []string
		for _, h := range pending {
			ev := last[h]
			if passed(ev) {
				healthy = append(healthy, h)
				emit(exe.Event{Host: h, Status: exe.HostOK, Name: "health check", Exec: ev.Exec})
			} else {
				still = append(still, h)
			}
		}
		pending = still
	}
	for _, h := range pending {
		ev := last[h]
		msg := fmt.Sprintf("unhealthy after %d attempts", o.healthRetries+1)
		if ev.Status == exe.HostUnreachable {
			msg += ": " + ev.Msg
		}
		emit(exe.Event{Host: h, Status: exe.HostFailed, Name: "health check", Msg: msg, Exec: ev.Exec})
	}
	return healthy, nil
}

// passed tells whether a health check's event is a pass.
func passed(ev exe.Event) bool {
	return ev.Exec != nil && ev.Exec.RTC == 0 && ev.Status != exe.HostUnreachable
}

// unhealthyThen is the last event of a host whose health checks failed
// attempts times before ctx ended the retries.
func unhealthyThen(ctx context.Context, host string, last exe.Event, attempts int) exe.Event {
	return exe.Event{Host: host, Status: exe.HostFailed, Name: "health check", Exec: last.Exec, Truncated: last.Truncated,
		Msg: fmt.Sprintf("unhealthy after %d attempts; %v", attempts, context.Cause(ctx))}
}
