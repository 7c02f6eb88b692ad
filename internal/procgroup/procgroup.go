// Package procgroup stops a local process group the way exed stops every
// interrupted command: SIGHUP, then SIGTERM, then SIGKILL, each after a
// grace period in which the group did not end, so that commands that
// ignore or trap SIGHUP (a nohup'd loop) end too.
package procgroup

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pollEvery is how often Stop looks whether the group has ended.
const pollEvery = 10 * time.Millisecond

// Stop ends the process group pgid: SIGHUP, then SIGTERM once grace has
// passed with a process of the group still alive, then SIGKILL after
// another grace. Each signal is followed by SIGCONT, so that a stopped
// process acts on it. It returns as soon as the group is gone, or once it
// has sent SIGKILL, and reports the last signal it sent (0 if the group
// was already gone).
func Stop(pgid int, grace time.Duration) syscall.Signal {
	var sent syscall.Signal
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		if errors.Is(syscall.Kill(-pgid, sig), syscall.ESRCH) {
			return sent // nothing is left of the group
		}
		sent = sig
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		if Gone(pgid, grace) {
			return sent
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return syscall.SIGKILL
}

// StopSession ends a command that leads the session sid (its shell was
// started with setsid, so sid is the shell's pid): the shell's process
// group sid, and every other process group of the session that holds a
// process whose environment carries mark (a KEY=value pair, such as
// EXE_RUN_ID=<run id>:<sid>; with an empty mark, the shell's group
// only). Commands that move to a group of their own
// (GNU timeout without --foreground, anything calling setpgid(0, 0)) are
// ended with the command; a daemon it started in a session of its own
// (setsid) is not, as it is not part of the command. The signals are those
// of Stop: SIGHUP, SIGTERM after grace, SIGKILL after grace again, each
// followed by SIGCONT; the groups are looked up again before each.
//
// It reports the last signal sent (0 if nothing was left) and whether every
// such process has ended, waiting up to grace after SIGKILL: false means a
// process outlived SIGKILL (one of another user, or in the kernel's
// uninterruptible sleep) or /proc cannot be read.
func StopSession(sid int, mark string, grace time.Duration) (syscall.Signal, bool) {
	var sent syscall.Signal
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGKILL} {
		groups, ok := sessionGroups(sid, mark)
		if !ok {
			// No /proc: the shell's group is all that can be found.
			groups = []int{sid}
		}
		signalled := false
		for _, g := range groups {
			if syscall.Kill(-g, sig) == nil {
				signalled = true
				_ = syscall.Kill(-g, syscall.SIGCONT)
			}
		}
		if !signalled {
			return sent, ok
		}
		sent = sig
		if sessionGone(sid, mark, grace) {
			return sent, true
		}
	}
	return sent, false
}

// sessionGone waits up to d for the groups StopSession stops to have no
// process left and tells whether they have none.
func sessionGone(sid int, mark string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if groups, ok := sessionGroups(sid, mark); ok && len(groups) == 0 {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		<-t.C
	}
}

// sessionGroups lists the process groups of session sid that StopSession
// ends and that still hold a process that is not a zombie: the group sid,
// and those holding a process whose environment carries mark. ok is false
// when /proc cannot be read.
func sessionGroups(sid int, mark string) (groups []int, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	session := strconv.Itoa(sid)
	seen := map[string]bool{}
	env := []byte(mark + "\x00")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		f := statFields(e.Name())
		// state ppid pgrp session ...
		if len(f) < 4 || f[3] != session || f[0] == "Z" || seen[f[2]] {
			continue
		}
		if f[2] != session {
			if mark == "" {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil || !bytes.HasPrefix(b, env) && !bytes.Contains(b, append([]byte{0}, env...)) {
				continue
			}
		}
		seen[f[2]] = true
		if g, err := strconv.Atoi(f[2]); err == nil {
			groups = append(groups, g)
		}
	}
	return groups, true
}

// statFields are the fields of /proc/<pid>/stat after the command name
// (state, ppid, pgrp, session, ...), or nil if the process has ended.
func statFields(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil // it ended meanwhile
	}
	// pid (comm) state ppid pgrp ...; comm may hold anything.
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// Gone waits up to d for the process group to have no process left and
// tells whether it has none.
func Gone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if !alive(pgid) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		<-t.C
	}
}

// alive tells whether a process of the group still runs. The group can be
// signalled as long as it has a zombie, and a process whose parent died is
// reaped by init, or not at all in a container without one: a group whose
// only members are zombies (seen in /proc) has ended.
func alive(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	group := strconv.Itoa(pgid)
	zombies := 0
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		f := statFields(e.Name())
		if len(f) < 3 || f[2] != group {
			continue
		}
		if f[0] != "Z" {
			return true
		}
		zombies++
	}
	// No member in sight but the group answered: /proc hides it (hidepid),
	// so it may still run.
	return zombies == 0
}
