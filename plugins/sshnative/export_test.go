package sshnative

// WaitReaped waits until the reaps x has started are done: those of dead
// processes' journals and those after cancelled commands.
func WaitReaped(x *Executor) { x.reaping.Wait() }

// DefaultHostList is Ansible's default inventory as sshnative reads it.
var DefaultHostList = &defaultHostList
