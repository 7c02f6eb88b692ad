package ansible

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/section"
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
//	concurrency  the server's [runner] concurrency: ansible's --forks, which a
//	             request's forks may lower, never raise
func (p *Plugin) Configure(_ context.Context, values map[string]string) error {
	s := section.New("ansible", values)
	cfg := Config{
		Workdir:   s.String("workdir", ""),
		Playbooks: s.String("playbooks", ""),
		Inventory: s.String("inventory", ""),
		Timeout:   s.Duration("timeout", 0),
		OutputCap: s.Int("output_cap", 0, 1),
		Forks:     s.Int("concurrency", 0, 1),
		Logger:    hclog.New(&hclog.LoggerOptions{Name: "ansible", Output: os.Stderr, JSONFormat: true}),
	}
	s.Check("kill_grace", func(v string) error {
		d, err := section.ParseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be more than 0")
		}
		cfg.KillGrace = d
		return nil
	})
	s.Check("env", func(v string) error {
		for _, kv := range section.SplitList(v) {
			if !strings.Contains(kv, "=") {
				return fmt.Errorf("%q is not KEY=value", kv)
			}
			cfg.Env = append(cfg.Env, kv)
		}
		return nil
	})
	if err := s.Err(); err != nil {
		return exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	// Ansible's own options belong in ansible.cfg or [ansible] env; a
	// misspelt option here is refused rather than silently ignored.
	if err := s.StrictUnused(); err != nil {
		return exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	x, err := New(cfg)
	if err != nil {
		return exe.Errorf(exe.ErrInvalid, "%v", err)
	}
	if p.Executor != nil {
		// A reload (SIGHUP): ansible reads the inventory at every run, so
		// there is nothing to swap; the section was checked above.
		return nil
	}
	p.Executor = x
	return nil
}
