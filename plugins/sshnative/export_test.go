package sshnative

// WaitReaped waits until the reaps x has started are done: those of dead
// processes' journals and those after cancelled commands.
func WaitReaped(x *Executor) { x.reaping.Wait() }

// DefaultHostList is Ansible's default inventory as sshnative reads it.
var DefaultHostList = &defaultHostList

// KnownHostsParses is how many times x has parsed known_hosts files.
func KnownHostsParses(x *Executor) uint64 { return x.pool.hostKeys.parses.Load() }
