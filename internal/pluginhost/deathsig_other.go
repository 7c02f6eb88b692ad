//go:build !linux

package pluginhost

import "os/exec"

// dieWithParent has no portable equivalent; Close still kills the plugin.
func dieWithParent(*exec.Cmd) {}
