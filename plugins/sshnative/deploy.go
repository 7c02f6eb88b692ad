package sshnative

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/0ops/exed/exe"
)

// maxScriptBytes bounds a role script: scripts travel as a single argument
// of the remote sh -c, and Linux caps one argument at 128 KiB.
const maxScriptBytes = 100 << 10

// roleStep is one script of a deploy.
type roleStep struct {
	name   string // event name: "main.sh" or "tags/<tag>.sh"
	script string
}

// loadRole reads the scripts a deploy runs: roles/<role>/main.sh, or with
// partial, roles/<role>/tags/<tag>.sh for each tag, in the order given.
func (x *Executor) loadRole(args exe.DeployArgs) ([]roleStep, error) {
	dir := filepath.Join(x.cfg.Roles, args.Role)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, exe.Errorf(exe.ErrInvalid, "role: %q not found in the roles directory", args.Role)
	}
	names := []string{"main.sh"}
	if len(args.Partial) > 0 {
		names = names[:0]
		for _, tag := range args.Partial {
			names = append(names, filepath.Join("tags", tag+".sh"))
		}
	}
	steps := make([]roleStep, 0, len(names))
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			if len(args.Partial) > 0 {
				return nil, exe.Errorf(exe.ErrInvalid, "partial: role %q has no tag script %s", args.Role, name)
			}
			return nil, exe.Errorf(exe.ErrInvalid, "role: %q has no main.sh", args.Role)
		}
		if len(b) > maxScriptBytes {
			return nil, exe.Errorf(exe.ErrInvalid, "role %q: %s is larger than %d KiB", args.Role, name, maxScriptBytes>>10)
		}
		steps = append(steps, roleStep{name: name, script: string(b)})
	}
	return steps, nil
}

// varEnv turns extra_vars into EXE_VAR_<NAME>=value pairs: names upper-cased
// with every other character than A-Z 0-9 made '_', strings as they are,
// other values as JSON.
func varEnv(vars map[string]any) ([]string, error) {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	from := make(map[string]string, len(keys)) // variable name -> extra_vars name
	for _, k := range keys {
		name := strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				return r
			}
			return '_'
		}, k)
		// Two names that map to one variable would leave the script one
		// of the values, silently.
		if other, ok := from[name]; ok {
			return nil, exe.Errorf(exe.ErrInvalid, "extra_vars: %q and %q both become EXE_VAR_%s", other, k, name)
		}
		from[name] = k
		var val string
		if s, ok := vars[k].(string); ok {
			val = s
		} else {
			b, err := json.Marshal(vars[k])
			if err != nil {
				return nil, exe.Errorf(exe.ErrInvalid, "extra_vars: %q cannot be encoded", k)
			}
			val = string(b)
		}
		if strings.IndexByte(val, 0) >= 0 {
			return nil, exe.Errorf(exe.ErrInvalid, "extra_vars: %q contains a NUL byte", k)
		}
		env = append(env, "EXE_VAR_"+name+"="+val)
	}
	return env, nil
}

// Deploy runs a script role on each host: its scripts in order, each one
// an event named after it as soon as it ends on that host; a failing
// script stops that host's deploy. extra_vars reach every script as JSON on
// stdin and as EXE_VAR_<NAME> variables.
func (x *Executor) Deploy(ctx context.Context, hosts []string, args exe.DeployArgs, emit exe.Emit) error {
	steps, err := x.loadRole(args)
	if err != nil {
		return err
	}
	vars := args.ExtraVars
	if vars == nil {
		vars = map[string]any{}
	}
	input, err := json.Marshal(vars)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "extra_vars: %v", err)
	}
	env, err := varEnv(vars)
	if err != nil {
		return err
	}
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	emit(exe.Event{Host: exe.AnnounceHost, Status: exe.HostAnnounce, Name: "deploy " + args.Role,
		Msg: "scripts: " + strings.Join(names, ", ")})
	return x.each(ctx, hosts, emit, func(ctx context.Context, host string, c conn, emit exe.Emit) {
		for i, step := range steps {
			cmd := command{script: step.script, stdin: strings.NewReader(string(input)), env: env}
			res, err := c.run(ctx, cmd, x.cfg.OutputCap)
			ev := exe.Event{Name: step.name, Truncated: res.truncated,
				Exec: &exe.ExecResult{RTC: res.rtc, Stdout: res.stdout, Stderr: res.stderr}}
			var notStarted *notStartedError
			switch {
			case errors.As(err, &notStarted):
				// Say this step never ran: the job's Runner cannot know.
				ev := exe.NotStarted(host, notStarted.cause)
				if i > 0 {
					ev.Name = step.name // the host ran earlier steps
				}
				emit(ev)
				return
			case err != nil:
				e, _ := runErr(err)
				ev.Status, ev.Msg = e.Status, e.Msg
			case res.rtc != 0:
				ev.Status, ev.Msg = exe.HostFailed, fmt.Sprintf("%s exited %d: %s", step.name, res.rtc, lastLine(res.stderr))
			default:
				ev.Status, ev.Msg = exe.HostChanged, lastLine(res.stdout)
			}
			ev.Host = host
			emit(ev)
			if ev.Status.Failure() {
				return // a failed step ends this host's deploy
			}
		}
	})
}
