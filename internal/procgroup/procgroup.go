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
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it ended meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold anything.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
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
