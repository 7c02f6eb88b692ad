package memory

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// memoryLimit returns the memory this process may use: physical memory,
// or its cgroup's limit when lower; 0 when unknown.
func memoryLimit() int64 {
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		return 0
	}
	total := int64(info.Totalram) * int64(info.Unit)
	for _, p := range cgroupLimitFiles() {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "max" (v2) or a figure near 2^63 (v1) mean no limit.
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 && n < total {
			total = n
		}
	}
	return total
}

// cgroupLimitFiles lists the files that may hold this process's memory
// limit: those of its own cgroup (from /proc/self/cgroup, v2 and v1), and
// those at the roots of the hierarchies (inside a container, its own).
func cgroupLimitFiles() []string {
	files := []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return files
	}
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controllers:path; v2 is "0::path".
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "" || parts[2] == "/" {
			continue
		}
		path := filepath.Clean(parts[2])
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files, filepath.Join("/sys/fs/cgroup", path, "memory.max"))
		case hasController(parts[1], "memory"):
			files = append(files, filepath.Join("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes"))
		}
	}
	return files
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
