// Command proctree prints the CPU time, in seconds, that the given
// processes and all their descendants have used so far: user + system time
// of each live process of the trees, plus the time of the children each has
// already waited for (utime+stime+cutime+cstime of /proc/PID/stat).
//
//	proctree PID...
//
// The difference of two readings is the CPU the trees used in between,
// children that came and went included (once their parent reaped them).
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

type proc struct {
	ppid  int
	ticks int64 // utime + stime + cutime + cstime
}

// readStat parses /proc/PID/stat; the command name (field 2) may hold
// spaces and parentheses, so the fields are counted after its last ')'.
func readStat(path string) (proc, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return proc{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return proc{}, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14-17.
	if len(f) < 15 {
		return proc{}, false
	}
	p := proc{}
	p.ppid, _ = strconv.Atoi(string(f[1]))
	for _, k := range f[11:15] {
		n, _ := strconv.ParseInt(string(k), 10, 64)
		p.ticks += n
	}
	return p, true
}

func main() {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	procs := map[int]proc{}
	children := map[int][]int{}
	for _, path := range paths {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		if p, ok := readStat(path); ok {
			procs[pid] = p
			children[p.ppid] = append(children[p.ppid], pid)
		}
	}
	var total int64
	seen := map[int]bool{}
	var walk func(pid int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		total += procs[pid].ticks
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, a := range os.Args[1:] {
		pid, err := strconv.Atoi(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "proctree: %q is not a process ID\n", a)
			os.Exit(2)
		}
		if _, ok := procs[pid]; ok {
			walk(pid)
		}
	}
	fmt.Printf("%.2f\n", float64(total)/clockTicks)
}
