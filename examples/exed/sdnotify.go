package main

import (
	"strconv"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// The service manager's notification protocol (sd_notify(3)), for units
// of Type=notify (etc/exed.service, etc/exed-worker.service): systemd
// passes a datagram socket in NOTIFY_SOCKET, and the process says there
// when it is ready, reloading and stopping. Outside systemd (no
// NOTIFY_SOCKET) nothing is sent. The messages come from the main process
// only (NotifyAccess=main): plugin processes and the commands they run
// inherit the variable but send nothing that counts.
//
// No watchdog: a timer that sends WATCHDOG=1 proves only that the Go
// runtime runs, not that exed serves, so it would restart nothing a hang
// leaves behind; the units set no WatchdogSec.

// sdNotify sends state to the service manager; a failure to reach it is
// logged, never fatal (the service runs on; systemd times its start out
// on its own).
func (p *process) sdNotify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		p.log.Warn("systemd notification failed", "state", state, "error", err)
	}
}

// sdReady says the process serves (READY=1), with status as the line
// `systemctl status` shows.
func (p *process) sdReady(status string) {
	// What was logged up to now is in the log when the service manager
	// (or a script waiting on it) is told.
	p.flushLogs()
	p.status = status
	p.sdNotify(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// sdReloading says a reload begins: RELOADING=1 with the time on the
// monotonic clock (MONOTONIC_USEC, which systemd 253 and later require to
// tell this reload from an earlier one); sdReady ends it.
func (p *process) sdReloading() {
	p.sdNotify(daemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10) +
		"\nSTATUS=reloading")
}

// sdStopping says the process is stopping (STOPPING=1): systemd then
// waits for its exit, up to TimeoutStopSec, rather than taking it for a
// crash.
func (p *process) sdStopping() {
	p.sdNotify(daemon.SdNotifyStopping + "\nSTATUS=stopping: finishing the jobs under way")
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC with.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
