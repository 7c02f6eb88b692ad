package sshnative

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/0ops/exed/inventory"
	"github.com/hashicorp/go-hclog"
)

// runIDVar is the environment variable every journaled command exports:
// EXE_RUN_ID=<run id>:<pgid>. scripts/reap.sh finds a command's processes
// by it.
const runIDVar = "EXE_RUN_ID"

// journalVars are what a journal keeps of a host for each command: its
// resolved connection and become settings (whichever spellings the
// inventory used), written with the plain variable names, which is what
// reaching the host again as the same user, with the same become user,
// takes, even if the inventory has changed since. Passwords are never
// written: a command on a host whose sudo needs one is reaped through the
// inventory's current settings.
func journalVars(h inventory.HostVars) map[string]string {
	c, err := h.Conn(nil)
	if err != nil {
		return nil
	}
	vars := map[string]string{"ansible_connection": c.Connection, "ansible_host": c.Address}
	for k, v := range map[string]string{"ansible_user": c.User, "ansible_ssh_private_key_file": c.PrivateKeyFile,
		"ansible_shell_type": c.ShellType, "ansible_ssh_args": c.SSHArgs, "ansible_ssh_common_args": c.SSHCommonArgs,
		"ansible_ssh_extra_args": c.SSHExtraArgs} {
		if v != "" {
			vars[k] = v
		}
	}
	if c.Port != 0 {
		vars["ansible_port"] = strconv.Itoa(c.Port)
	}
	if c.Become {
		vars["ansible_become"] = "true"
		vars["ansible_become_method"] = c.BecomeMethod
		vars["ansible_become_user"] = c.BecomeUser
		vars["ansible_become_exe"] = c.BecomeExe
		vars["ansible_become_flags"] = c.BecomeFlags
	}
	return vars
}

// hostFromJournal is the host a journal line describes.
func hostFromJournal(name string, vars map[string]string) *inventory.Host {
	h := &inventory.Host{Name: name, Vars: make(map[string]any, len(vars))}
	for k, v := range vars {
		h.Vars[k] = v
	}
	return h
}

// compactAt is the journal size from which a journal that is mostly ended
// commands is rewritten with only the running ones.
const compactAt = 1 << 20

// journal records the commands an Executor runs, from before each starts
// until it is known to have ended, so that whoever comes after a process
// that died (its next incarnation, or the server's next start) can end the
// commands it left running: over SSH sshd does not signal a command when
// its connection drops, and a local command outlives its parent.
//
// Each process appends to a file of its own, run-<id>.journal, one JSON
// line per change:
//
//	{"b":"<run id>","h":"<host>","v":{connection vars}}   a command began
//	{"e":"<run id>"}                                      it ended
//
// Each line is one write(2) and nothing is synced: the journal must
// survive the death of its process, not of the machine. The process holds
// an flock(2) on its file while it lives, so several servers can share one
// state directory and each reaps only the journals of dead processes.
type journal struct {
	dir  string
	id   string // this process's prefix of every run ID
	path string

	mu   sync.Mutex
	f    *os.File
	seq  uint64
	live map[string][]byte // run ID -> its begin line
	size int64
	log  hclog.Logger
	bad  bool // the last write failed (logged once until one succeeds)
}

// openJournal creates dir if needed and a locked journal file in it.
func openJournal(dir string, log hclog.Logger) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	j := &journal{dir: dir, id: id, live: map[string][]byte{}, log: log}
	j.path = filepath.Join(dir, "run-"+j.id+".journal")
	f, err := createLocked(j.path)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	j.f = f
	return j, nil
}

// createLocked creates path and takes the flock that says its owner lives.
func createLocked(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

type journalLine struct {
	Begin string            `json:"b,omitempty"`
	End   string            `json:"e,omitempty"`
	Host  string            `json:"h,omitempty"`
	Vars  map[string]string `json:"v,omitempty"`
}

// begin records a command about to start on h and returns its run ID.
func (j *journal) begin(h inventory.HostVars) string {
	vars := journalVars(h)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	id := j.id + "." + strconv.FormatUint(j.seq, 36)
	line, _ := json.Marshal(journalLine{Begin: id, Host: h.Name(), Vars: vars})
	line = append(line, '\n')
	j.live[id] = line
	j.write(line)
	return id
}

// end records that the command with run ID id has ended.
func (j *journal) end(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.live[id]; !ok {
		return
	}
	delete(j.live, id)
	j.write([]byte(`{"e":"` + id + `"}` + "\n"))
	if j.size > compactAt {
		j.compact()
	}
}

// adopt takes over the commands of a dead process's journal that could not
// be ended yet, so that they are tried again after this process.
func (j *journal) adopt(lines [][]byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, line := range lines {
		var l journalLine
		if json.Unmarshal(line, &l) == nil && l.Begin != "" {
			j.live[l.Begin] = line
			j.write(line)
		}
	}
}

// write appends line; j.mu is held. A journal that cannot be written does
// not stop commands: losing the record only matters if this process dies
// while they run.
func (j *journal) write(line []byte) {
	n, err := j.f.Write(line)
	j.size += int64(n)
	if err != nil {
		if !j.bad {
			j.log.Error("cannot record running commands; if this process dies they may go on running", "journal", j.path, "error", err)
		}
		j.bad = true
		return
	}
	j.bad = false
}

// compact rewrites the journal with the running commands only, once ended
// ones make up most of it. The new file is locked before it replaces the
// old one, so that no reaper ever finds the path unlocked.
func (j *journal) compact() {
	var keep int64
	for _, line := range j.live {
		keep += int64(len(line))
	}
	if keep*4 > j.size {
		return
	}
	tmp := j.path + ".new"
	f, err := createLocked(tmp)
	if err != nil {
		j.log.Warn("cannot compact the journal", "journal", j.path, "error", err)
		return
	}
	var size int64
	for _, line := range j.live {
		n, err := f.Write(line)
		size += int64(n)
		if err != nil {
			f.Close()
			os.Remove(tmp)
			j.log.Warn("cannot compact the journal", "journal", j.path, "error", err)
			return
		}
	}
	if err := os.Rename(tmp, j.path); err != nil {
		f.Close()
		os.Remove(tmp)
		j.log.Warn("cannot compact the journal", "journal", j.path, "error", err)
		return
	}
	j.f.Close()
	j.f, j.size = f, size
}

// close removes the journal when no command is left in it; otherwise it
// stays for the next process to reap. Either way the lock is released.
func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return
	}
	if len(j.live) == 0 {
		os.Remove(j.path)
	}
	j.f.Close()
	j.f = nil
}

// deadJournal is the journal of a process that is gone, locked by the
// reaper that reads it.
type deadJournal struct {
	path string
	f    *os.File
	// byHost holds each running command's begin line, by host.
	byHost map[string][]journalEntry
}

type journalEntry struct {
	id   string
	host *inventory.Host
	line []byte
}

// deadJournals locks and reads every journal in dir whose process is gone,
// except own. A journal another reaper holds is left to it.
func deadJournals(dir, own string) ([]*deadJournal, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "run-*.journal"))
	if err != nil {
		return nil, err
	}
	var out []*deadJournal
	for _, p := range paths {
		if p == own {
			continue
		}
		dj, err := lockDead(p)
		if err != nil {
			return out, err
		}
		if dj != nil {
			out = append(out, dj)
		}
	}
	return out, nil
}

// lockDead locks and reads the journal at p, or returns nil when its owner
// lives, another reaper holds it, or it is gone.
func lockDead(p string) (*deadJournal, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, err
	}
	// Locked, but maybe a file another reaper finished with and removed,
	// or that a compaction replaced: only the file at p counts.
	held, err1 := f.Stat()
	now, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, nil
	}
	dj := &deadJournal{path: p, f: f, byHost: map[string][]journalEntry{}}
	begun := map[string]journalEntry{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l journalLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // a line cut by the death of the writer
		}
		switch {
		case l.Begin != "":
			line := append(append([]byte(nil), sc.Bytes()...), '\n')
			begun[l.Begin] = journalEntry{id: l.Begin, host: hostFromJournal(l.Host, l.Vars), line: line}
			order = append(order, l.Begin)
		case l.End != "":
			delete(begun, l.End)
		}
	}
	for _, id := range order {
		if e, ok := begun[id]; ok {
			dj.byHost[e.host.Name] = append(dj.byHost[e.host.Name], e)
		}
	}
	return dj, nil
}

// done removes the dead journal: what was left in it is ended or adopted.
func (dj *deadJournal) done() {
	os.Remove(dj.path)
	dj.f.Close()
}

// validRunID tells whether s can be a run ID: it reaches a shell unquoted.
func validRunID(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdefghijklmnopqrstuvwxyz.") == ""
}

// randomID is the prefix of a process's run IDs: 12 hex digits, so that
// the IDs of different processes on one host differ.
func randomID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// runIDs hands out the run IDs of an executor that keeps no journal.
type runIDs struct {
	prefix string
	seq    atomic.Uint64
}

func (r *runIDs) next() string {
	return r.prefix + "." + strconv.FormatUint(r.seq.Add(1), 36)
}

// marked runs commands on a host with a run ID each, as tracked does, but
// keeps no journal: a stop still finds, by the ID, the process groups the
// command's processes moved to.
type marked struct {
	conn
	ids *runIDs
}

func (m marked) run(ctx context.Context, cmd command, limit int) (result, error) {
	if !cmd.raw && cmd.runID == "" {
		cmd.runID = m.ids.next()
	}
	return m.conn.run(ctx, cmd, limit)
}
