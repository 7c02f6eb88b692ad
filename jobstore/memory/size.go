package memory

import (
	"strconv"
	"strings"

	"github.com/0ops/exed/exe"
)

// Overheads of the size estimate, in bytes, beyond the bytes of strings:
// roughly what the Go heap spends on each structure (its header, pointers,
// map buckets), so that many small events weigh what they cost and not
// only their text.
const (
	jobOverhead   = 512 // the entry, its job and channel
	eventOverhead = 192 // an Event in the events slice, with its slice slot
	execOverhead  = 48  // an ExecResult
	valueOverhead = 16  // an interface value in a map or slice
	mapOverhead   = 48  // a map header; each member adds its key and value
)

// eventBytes estimates the heap an event holds.
func eventBytes(ev exe.Event) int64 {
	n := int64(eventOverhead + len(ev.Host) + len(ev.Name) + len(ev.Msg))
	if ev.Exec != nil {
		n += int64(execOverhead + len(ev.Exec.Stdout) + len(ev.Exec.Stderr))
	}
	if ev.Facts != nil {
		n += valueBytes(ev.Facts)
	}
	if ev.Extra != nil {
		n += valueBytes(ev.Extra)
	}
	return n
}

// requestBytes estimates the heap a job's request holds.
func requestBytes(job *exe.Job) int64 {
	n := int64(jobOverhead + len(job.JID))
	for _, h := range job.Targets {
		n += int64(valueOverhead + len(h))
	}
	n += int64(len(job.Service.Name) + len(job.Execute.Cmd) + len(job.Deploy.Role) + len(job.Task.Name) + len(job.Task.Type))
	for _, p := range job.Deploy.Partial {
		n += int64(valueOverhead + len(p))
	}
	if job.Deploy.ExtraVars != nil {
		n += valueBytes(job.Deploy.ExtraVars)
	}
	if job.Task.Options != nil {
		n += valueBytes(job.Task.Options)
	}
	return n
}

// valueBytes estimates the heap of a JSON-shaped value (facts, extra
// fields, extra_vars).
func valueBytes(v any) int64 {
	switch t := v.(type) {
	case string:
		return int64(valueOverhead + len(t))
	case map[string]any:
		n := int64(mapOverhead)
		for k, e := range t {
			n += int64(valueOverhead+len(k)) + valueBytes(e)
		}
		return n
	case []any:
		n := int64(mapOverhead)
		for _, e := range t {
			n += valueBytes(e)
		}
		return n
	case []string:
		n := int64(mapOverhead)
		for _, e := range t {
			n += int64(valueOverhead + len(e))
		}
		return n
	}
	return valueOverhead // numbers, booleans, nil and other small values
}

// byteSize formats n for a message: "1.5 GiB", "512 MiB", "900 bytes".
func byteSize(n int64) string {
	if n < 1<<10 {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	f, unit := float64(n)/(1<<10), "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if f < 1<<10 {
			break
		}
		f, unit = f/(1<<10), u
	}
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0") + " " + unit
}
