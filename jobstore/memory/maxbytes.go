package memory

// Bounds of DefaultMaxBytes.
const (
	// fallbackMaxBytes is the budget where the machine's memory cannot be
	// read.
	fallbackMaxBytes = 512 << 20
	// minDefaultMaxBytes keeps the budget useful on small machines: a few
	// large jobs' worth.
	minDefaultMaxBytes = 64 << 20
)

// DefaultMaxBytes is the byte budget of a Store whose Options.MaxBytes is
// zero: an eighth of the memory this process may use, so that the kept
// jobs leave the rest to the server, its plugins and running commands'
// output in flight. That memory is the machine's physical memory
// (sysinfo(2)), or the cgroup's memory limit when it is lower (memory.max
// of cgroup v2, memory.limit_in_bytes of v1: the limit of a container).
// The result is at least 64 MiB; where the memory cannot be read (other
// systems than Linux), it is 512 MiB.
func DefaultMaxBytes() int64 {
	total := memoryLimit()
	if total <= 0 {
		return fallbackMaxBytes
	}
	return max(total/8, minDefaultMaxBytes)
}
