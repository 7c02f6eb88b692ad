// Command exe-executor-ansible serves the ansible executor as an exed
// plugin, for a modules directory; the exed binary also serves it built in
// ([runner] executor = ansible).
package main

import (
	"github.com/0ops/exed/executor"
	"github.com/0ops/exed/plugins/ansible"
)

func main() { executor.Serve(&ansible.Plugin{}) }
