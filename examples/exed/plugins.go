package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/0ops/exed/loader"
	"github.com/hashicorp/go-hclog"
)

// loaderOptions are the plugins the configuration asks for: exed's built-ins
// and [runner] modules, the selected executor, every task, their sections.
func loaderOptions(cfg *config.Config, log hclog.Logger) loader.Options {
	return loader.Options{Modules: cfg.Runner.Modules, Builtins: loader.Standard, Executor: cfg.Runner.Executor,
		Sections: cfg.Sections, Forks: cfg.Runner.Concurrency, StateDir: cfg.Runner.StateDir, Logger: log}
}

// startPlugins starts the configured executor and every task plugin; a
// plugin that cannot start or refuses its section stops exed here.
func startPlugins(ctx context.Context, cfg *config.Config, log hclog.Logger) (*loader.Set, error) {
	set, err := loader.Load(ctx, loaderOptions(cfg, log))
	var notFound *loader.NotFoundError
	if errors.As(err, &notFound) && notFound.Kind == loader.KindExecutor {
		return nil, fmt.Errorf("[runner] executor: %w", err)
	}
	if err != nil {
		return nil, err
	}
	var sections []string
	for s := range cfg.Sections {
		sections = append(sections, s)
	}
	sort.Strings(sections)
	for _, s := range sections {
		if !config.ServerSections[s] && !set.Catalog.Has(s) {
			log.Warn(fmt.Sprintf("%s: section [%s] ignored: no plugin of that name", cfg.Path, s))
		}
	}
	return set, nil
}

// listPlugins prints what discovery finds, for exed --list-plugins.
func listPlugins(cfg *config.Config, stdout io.Writer) {
	cat, warnings := loader.Discover(cfg.Runner.Modules, loader.Standard)
	fmt.Fprintf(stdout, "modules directory: %s\n", cfg.Runner.Modules)
	for _, kind := range []struct {
		name string
		refs map[string]loader.Plugin
	}{{loader.KindExecutor, cat.Executors}, {loader.KindTask, cat.Tasks}} {
		names := make([]string, 0, len(kind.refs))
		for n := range kind.refs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			mark := ""
			if kind.name == loader.KindExecutor && name == cfg.Runner.Executor {
				mark = " (selected)"
			}
			fmt.Fprintf(stdout, "%-8s  %-16s  %s%s\n", kind.name, name, kind.refs[name].Source(), mark)
		}
	}
	for _, w := range warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
}
