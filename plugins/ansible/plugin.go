package ansible

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
)

// Plugin is the ansible executor as exed runs it: built from its [ansible]
// config section when the server configures it (see executor.Configurer).
type Plugin struct {
	*Executor
}

// Configure reads the [ansible] section:
//
//	workdir      where ansible runs (default: the current directory)
//	playbooks    directory of _deploy.yml, relative to workdir (default playbooks)
//	inventory    passed as -i (default: ansible's own configuration)
//	env          extra environment for ansible: KEY=value, comma-separated
//	timeout      bound per operation (Go duration or seconds; default none)
//	kill_grace   an interrupted ansible's process group gets SIGHUP, then
//	             SIGTERM after this long, then SIGKILL (default 2s)
//	output_cap   bytes kept of each output field (default 1048576)
//	concurrency  the server's [runner] concurrency: ansible's --forks
func (p *Plugin) Configure(_ context.Context, values map[string]string) error {
	cfg := Config{Logger: hclog.New(&hclog.LoggerOptions{Name: "ansible", Output: os.Stderr, JSONFormat: true})}
	for k, v := range values {
		switch k {
		case "workdir":
			cfg.Workdir = v
		case "playbooks":
			cfg.Playbooks = v
		case "inventory":
			cfg.Inventory = v
		case "env":
			for _, kv := range strings.Split(v, ",") {
				kv = strings.TrimSpace(kv)
				if kv == "" {
					continue
				}
				if !strings.Contains(kv, "=") {
					return exe.Errorf(exe.ErrInvalid, "[ansible] env: %q is not KEY=value", kv)
				}
				cfg.Env = append(cfg.Env, kv)
			}
		case "timeout", "kill_grace":
			d, err := time.ParseDuration(v)
			if n, nerr := strconv.Atoi(v); nerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
			if err != nil || d < 0 {
				return exe.Errorf(exe.ErrInvalid, "[ansible] %s: %q is not a duration", k, v)
			}
			if k == "kill_grace" && d == 0 {
				return exe.Errorf(exe.ErrInvalid, "[ansible] kill_grace: must be more than 0")
			}
			if k == "timeout" {
				cfg.Timeout = d
			} else {
				cfg.KillGrace = d
			}
		case "output_cap":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return exe.Errorf(exe.ErrInvalid, "[ansible] output_cap: %q is not a positive number", v)
			}
			cfg.OutputCap = n
		case "concurrency":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return exe.Errorf(exe.ErrInvalid, "[runner] concurrency: %q is not a positive number", v)
			}
			cfg.Forks = n
		default:
			return exe.Errorf(exe.ErrInvalid, "[ansible] %s: unknown option", k)
		}
	}
	x, err := New(cfg)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	p.Executor = x
	return nil
}
