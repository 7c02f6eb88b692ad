package sshnative

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/0ops/exed/inventory"
)

//go:embed scripts/reap.sh
var reapScript string

// Bounds of a reap: reapGrace is how long the reap script waits for a
// process group after each of SIGHUP and SIGTERM before the next signal;
// reapTimeout bounds one host's whole reap, connecting included.
const (
	reapGrace   = time.Second
	reapTimeout = time.Minute
)

// tracked runs commands on a host through conn and keeps each in the
// journal from before it starts until it has ended.
type tracked struct {
	conn
	x    *Executor
	host inventory.HostVars
}

func (t tracked) run(ctx context.Context, cmd command, limit int) (result, error) {
	if cmd.raw {
		return t.conn.run(ctx, cmd, limit) // nothing to name the command by; ping's "true"
	}
	cmd.runID = t.x.journal.begin(t.host)
	res, err := t.conn.run(ctx, cmd, limit)
	if !res.started || err == nil {
		// It never ran, or it ended by itself: what it left running on
		// purpose (a daemon) is none of exed's business.
		t.x.journal.end(cmd.runID)
		return res, err
	}
	// Cancelled, timed out or cut off: its process group may still run.
	t.x.settle(t.conn, t.host.Name(), cmd.runID)
	return res, err
}

// settle makes sure the process group of a command that did not end by
// itself is gone (SIGHUP, SIGTERM, SIGKILL), in the background: the
// command's event does not wait for it, Close does. A host that cannot be
// reached keeps the command in the journal for the next process.
func (x *Executor) settle(c conn, host, id string) {
	x.reaping.Add(1)
	go func() {
		defer x.reaping.Done()
		ctx, cancel := context.WithTimeout(context.Background(), reapTimeout)
		defer cancel()
		if err := x.reap(ctx, c, host, []string{id}); err != nil {
			x.log.Warn("a cancelled command's process group may still run; it is tried again after this process", "host", host, "error", err)
			return
		}
		x.journal.end(id)
	}()
}

// errCannotCheck is a host where the reap script cannot look for processes.
var errCannotCheck = errors.New("the host has no /proc: exed cannot find the processes of its commands there")

// reap ends the process groups of the commands with the given run IDs on
// one host with scripts/reap.sh. nil means none of them is left, or none
// can be (processes of another user), or the host cannot be searched: the
// commands are done with. An error means the host could not be reached.
func (x *Executor) reap(ctx context.Context, c conn, host string, ids []string) error {
	args := []string{strconv.Itoa(int(reapGrace / (100 * time.Millisecond)))}
	for _, id := range ids {
		if validRunID(id) {
			args = append(args, id)
		}
	}
	res, err := c.run(ctx, command{script: reapScript, args: args}, DefaultOutputCap)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		if sig, pgid, ok := strings.Cut(line, " "); ok {
			x.log.Warn("signalled the process group of a command exed lost track of", "host", host, "signal", sig, "pgid", pgid)
		}
	}
	switch res.rtc {
	case 0:
	case 3:
		x.log.Error("cannot end commands left running", "host", host, "error", errCannotCheck)
	case 1:
		x.log.Error("processes of commands left running outlived SIGKILL", "host", host, "stderr", firstLine(res.stderr))
	default:
		return fmt.Errorf("reap script exited %d: %s", res.rtc, firstLine(res.stderr))
	}
	return nil
}

// reapDead ends the commands that dead processes left running, from their
// journals in the state directory: those of this executor's previous
// incarnation, or of a server that was killed. Commands on hosts that
// cannot be reached are adopted into this process's journal.
func (x *Executor) reapDead() {
	dead, err := deadJournals(x.journal.dir, x.journal.path)
	if err != nil {
		x.log.Error("cannot read the journals of dead processes", "dir", x.journal.dir, "error", err)
	}
	for _, dj := range dead {
		x.reapJournal(dj)
	}
}

func (x *Executor) reapJournal(dj *deadJournal) {
	sem := make(chan struct{}, x.cfg.Forks)
	var mu sync.Mutex
	var keep [][]byte
	var wg sync.WaitGroup
	for name, entries := range dj.byHost {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ids := make([]string, len(entries))
			for i, e := range entries {
				ids[i] = e.id
			}
			ctx, cancel := context.WithTimeout(context.Background(), reapTimeout)
			defer cancel()
			c, err := x.reapConn(entries[0].host)
			if err == nil {
				err = x.reap(ctx, c, name, ids)
			}
			if err != nil {
				x.log.Warn("commands left running by a dead process may still run; they are tried again after this process",
					"host", name, "commands", len(ids), "error", err)
				mu.Lock()
				for _, e := range entries {
					keep = append(keep, e.line)
				}
				mu.Unlock()
				return
			}
			x.log.Info("checked the commands a dead process left running", "host", name, "commands", len(ids))
		}()
	}
	wg.Wait()
	x.journal.adopt(keep)
	dj.done()
}

// reapConn reaches a host a journal names: through the pool when the
// inventory still reaches it the same way, else on a connection of its
// own, as the journal recorded it.
func (x *Executor) reapConn(h *inventory.Host) (conn, error) {
	v := x.view()
	if cur, ok := v.inv.HostVars(h.Name); ok && sameConnection(cur, inventory.VarsOf(h)) {
		return x.hostConn(v, cur)
	}
	vars := map[string]any{}
	for k, v := range h.Vars {
		vars[k] = v
	}
	if vars["ansible_host"] == nil || vars["ansible_host"] == "" {
		vars["ansible_host"] = h.Name
	}
	return x.hostConn(v, inventory.VarsOf(&inventory.Host{Name: "\x00journal " + h.Name, Vars: vars}))
}

func sameConnection(a, b inventory.HostVars) bool {
	return maps.Equal(journalVars(a), journalVars(b))
}
