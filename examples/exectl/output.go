package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/0ops/exed/exe"
)

// SGR colours, as Ansible's defaults: ok green, changed yellow, failed
// red, unreachable bright red, skipped cyan.
const (
	colorReset       = "\x1b[0m"
	colorOK          = "\x1b[32m"
	colorChanged     = "\x1b[33m"
	colorFailed      = "\x1b[31m"
	colorUnreachable = "\x1b[91m"
	colorSkipped     = "\x1b[36m"
	colorDim         = "\x1b[2m"
	clearLine        = "\r\x1b[K"
)

func statusColor(s exe.HostStatus) string {
	switch s {
	case exe.HostOK:
		return colorOK
	case exe.HostChanged:
		return colorChanged
	case exe.HostFailed:
		return colorFailed
	case exe.HostUnreachable:
		return colorUnreachable
	case exe.HostSkipped:
		return colorSkipped
	}
	return ""
}

// screen writes a command's output: host blocks and notices, and on a
// terminal the one-line progress summary, redrawn in place (\r) and
// cleared before anything else is written and at the end.
type screen struct {
	out, errOut io.Writer
	progress    bool // stdout is a terminal: draw the summary line
	errSame     bool // stderr is the same terminal: clear the line before writing to it
	color       bool
	width       func() int
	drawn       bool
}

// colorize wraps each line of text in color (on a terminal with colours).
func (s *screen) colorize(text, color string) string {
	if !s.color || color == "" {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = color + l + colorReset
		}
	}
	return strings.Join(lines, "\n")
}

func (s *screen) clear() {
	if s.drawn {
		io.WriteString(s.out, clearLine)
		s.drawn = false
	}
}

// print writes text (ending in a newline) in color.
func (s *screen) print(text, color string) {
	s.clear()
	io.WriteString(s.out, s.colorize(text, color))
}

// notice writes a line to stderr.
func (s *screen) notice(format string, args ...any) {
	if s.errSame {
		s.clear()
	}
	fmt.Fprintf(s.errOut, "exectl: "+format+"\n", args...)
}

// draw shows line as the progress summary, cut to the terminal's width so
// that it never wraps (a wrapped line cannot be redrawn with \r).
func (s *screen) draw(line string) {
	if !s.progress {
		return
	}
	if w := s.width() - 1; w > 0 && len(line) > w {
		line = line[:w]
	}
	io.WriteString(s.out, clearLine+s.colorize(line, colorDim))
	s.drawn = true
}

// caption is Ansible's word for a status in an ad-hoc result's header.
func caption(s exe.HostStatus, exec bool) string {
	switch s {
	case exe.HostOK:
		return "SUCCESS"
	case exe.HostChanged:
		return "CHANGED"
	case exe.HostFailed:
		if exec {
			return "FAILED"
		}
		return "FAILED!"
	case exe.HostUnreachable:
		return "UNREACHABLE!"
	case exe.HostSkipped:
		return "SKIPPED"
	}
	return s.String()
}

// hostBlock is an event as Ansible's ad-hoc (minimal) output shows a
// host's result: a command's as "host | CHANGED | rc=0 >>" and its
// output; others as "host | SUCCESS => {...}" with the event's JSON.
// A step's name (deploy, tasks) follows the status. An announce is a
// "TASK [name]" banner.
func hostBlock(ev exe.Event) string {
	if ev.Host == exe.AnnounceHost {
		return banner("TASK", ev.Name) + indentMsg(ev.Msg)
	}
	var b strings.Builder
	b.WriteString(ev.Host + " | " + caption(ev.Status, ev.Exec != nil && ev.Status != exe.HostUnreachable))
	if ev.Exec != nil && ev.Status != exe.HostUnreachable {
		if ev.Name != "" {
			b.WriteString(" | " + ev.Name)
		}
		fmt.Fprintf(&b, " | rc=%d >>\n", ev.Exec.RTC)
		for _, text := range []string{ev.Exec.Stdout, ev.Exec.Stderr} {
			if text != "" {
				b.WriteString(strings.TrimSuffix(text, "\n") + "\n")
			}
		}
		if ev.Msg != "" && (ev.Status.Failure() || ev.Status == exe.HostSkipped) {
			b.WriteString(ev.Msg + "\n")
		}
		if ev.Truncated {
			b.WriteString("(output truncated by the server's cap)\n")
		}
		return b.String()
	}
	if ev.Status == exe.HostSkipped && ev.Msg == "" && ev.Name == "" && ev.Exec == nil && ev.Facts == nil {
		return b.String() + "\n"
	}
	body, err := json.MarshalIndent(ev, "", "    ")
	if err != nil {
		body = []byte(fmt.Sprintf("%q", err.Error()))
	}
	return b.String() + " => " + string(body) + "\n"
}

func indentMsg(msg string) string {
	if msg == "" {
		return ""
	}
	return msg + "\n"
}

// banner is Ansible's "TASK [name] ****" line, 80 columns wide.
func banner(kind, name string) string {
	head := kind + " [" + name + "] "
	if kind == "PLAY RECAP" {
		head = kind + " "
	}
	return head + strings.Repeat("*", max(3, 79-len(head))) + "\n"
}

// tally counts a job's hosts for the progress line and the recap.
type tally struct {
	targets []string
	multi   bool // deploy, task: several events per host
	start   time.Time
	hosts   map[string]*hostCount
	done    int // hosts with an event
	failed  int // hosts with a FAILED or UNREACHABLE event
	state   string
}

// hostCount is one host's line of the recap (Ansible's PLAY RECAP: ok
// counts every OK or CHANGED result, changed those that changed).
type hostCount struct {
	ok, changed, unreachable, failed, skipped int
}

func newTally(job *exe.Job, start time.Time) *tally {
	t := &tally{targets: job.Targets, multi: job.Operate.Mutex(), start: start, hosts: map[string]*hostCount{}}
	for _, h := range job.Targets {
		t.hosts[h] = &hostCount{}
	}
	return t
}

func (t *tally) add(ev exe.Event) {
	if ev.Host == exe.AnnounceHost {
		return
	}
	c, ok := t.hosts[ev.Host]
	if !ok {
		c = &hostCount{}
		t.hosts[ev.Host] = c
	}
	before := *c
	switch ev.Status {
	case exe.HostOK:
		c.ok++
	case exe.HostChanged:
		c.ok++
		c.changed++
	case exe.HostFailed:
		c.failed++
	case exe.HostUnreachable:
		c.unreachable++
	case exe.HostSkipped:
		c.skipped++
	}
	if before == (hostCount{}) {
		t.done++
	}
	if before.failed+before.unreachable == 0 && c.failed+c.unreachable > 0 {
		t.failed++
	}
}

// line is the progress summary: hosts done (for deploy and tasks, hosts
// that have reported), failed, still running, and the time since the job
// started.
func (t *tally) line(now time.Time) string {
	word := "done"
	if t.multi {
		word = "reported"
	}
	total := len(t.targets)
	s := fmt.Sprintf("[%d/%d hosts %s, %d failed, %d running, %s]", t.done, total, word, t.failed, max(total-t.done, 0),
		now.Sub(t.start).Round(time.Second))
	if t.state != "" {
		s += " " + t.state
	}
	return s
}

// recap is Ansible's PLAY RECAP of a deploy or task: one line per host,
// in target order, then any other host that reported.
func (t *tally) recap(color bool) string {
	var b strings.Builder
	b.WriteString("\n" + banner("PLAY RECAP", ""))
	names := append([]string(nil), t.targets...)
	var others []string
	for h := range t.hosts {
		if !contains(t.targets, h) {
			others = append(others, h)
		}
	}
	sort.Strings(others)
	for _, h := range append(names, others...) {
		c := t.hosts[h]
		hostColor := colorOK
		switch {
		case c.unreachable > 0:
			hostColor = colorUnreachable
		case c.failed > 0:
			hostColor = colorFailed
		case c.changed > 0:
			hostColor = colorChanged
		}
		field := func(name string, n int, col string) string {
			s := fmt.Sprintf("%s=%-4d", name, n)
			if color && n > 0 {
				return col + s + colorReset
			}
			return s
		}
		name := fmt.Sprintf("%-26s", h)
		if color {
			name = hostColor + name + colorReset
		}
		line := fmt.Sprintf("%s : %s %s %s %s %s", name, field("ok", c.ok, colorOK), field("changed", c.changed, colorChanged),
			field("unreachable", c.unreachable, colorUnreachable), field("failed", c.failed, colorFailed), field("skipped", c.skipped, colorSkipped))
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
