// Command exe-executor-sshnative serves the sshnative executor as an exed
// plugin, for a modules directory or an embedding program; the exed binary
// also serves it built in ([runner] executor = sshnative, the default).
package main

import (
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/plugins/sshnative"
)

func main() { executor.Serve(&sshnative.Plugin{}) }
