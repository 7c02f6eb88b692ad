package pluginhost

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the plugin if the server dies without
// closing it (kill -9, a crash): no orphan keeps working for nobody.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
