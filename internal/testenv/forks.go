package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ForksProbe measures how many hosts of one operation run at once without
// timing anything. Each host runs Cmd, which makes a FIFO in the probe's
// run directory, appends to its log how many FIFOs are there (the hosts
// running, itself included), then blocks reading its FIFO. Drive lets the
// hosts end one by one, each time once the expected number is running,
// and fails if more than forks ever are.
type ForksProbe struct {
	t        testing.TB
	run, log string

	mu       sync.Mutex
	released map[string]bool
}

// probeWait bounds each wait of a ForksProbe for hosts to start.
const probeWait = 30 * time.Second

// NewForksProbe makes its run directory and log in a new directory in
// dir, writable by any user (a host reached over SSH may run as another),
// and lets every host still blocked go when the test ends, so that a
// failed test leaves no command behind.
func NewForksProbe(t testing.TB, dir string) *ForksProbe {
	t.Helper()
	dir, err := os.MkdirTemp(dir, "forks")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &ForksProbe{t: t, run: filepath.Join(dir, "running"), log: filepath.Join(dir, "seen"), released: map[string]bool{}}
	if err := os.Mkdir(p.run, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p.run, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.WriteFile(p.log, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p.log, 0o666); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range p.fifos() {
			_ = release(f)
		}
	})
	return p
}

// Cmd is the shell command each host runs: it prints "released" once
// Drive lets it go. A host's FIFO is removed before its command ends, so
// the next host to start never counts it. The FIFO is made under a name
// Drive does not look at (new.*), and takes its host.* name only once
// the host has counted: Drive, which lets a host go once enough of them
// run, cannot let one go between another's start and its count (both
// would then count only themselves).
func (p *ForksProbe) Cmd() string {
	return fmt.Sprintf(`f=$(mktemp -u -p %[1]s host.XXXXXXXX) && n=%[1]s/new.${f##*/} && mkfifo -m 666 "$n" && ls %[1]s | wc -l >> %[2]s && mv "$n" "$f" && read x < "$f"; rm -f "$f"; echo released`, p.run, p.log)
}

// fifos lists the FIFOs of the hosts running that have counted, sorted.
func (p *ForksProbe) fifos() []string {
	names, _ := filepath.Glob(filepath.Join(p.run, "host.*"))
	slices.Sort(names)
	return names
}

// Drive lets hosts end one at a time: before each, it waits until
// min(forks, hosts not yet let go) hosts run and none more, then lets the
// first of them go. It fails the test if more than forks hosts run at
// once, or if the expected hosts have not started within 30 seconds.
func (p *ForksProbe) Drive(hosts, forks int) {
	p.t.Helper()
	for done := 0; done < hosts; done++ {
		want := min(forks, hosts-done)
		deadline := time.Now().Add(probeWait)
		var waiting []string
		for {
			all := p.fifos()
			if len(all) > forks {
				p.t.Fatalf("%d hosts run at once (forks %d): %v", len(all), forks, all)
			}
			waiting = p.unreleased(all)
			if len(waiting) >= want {
				break
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("after %d hosts ended, %d run, want %d (forks %d)", done, len(waiting), want, forks)
			}
			time.Sleep(5 * time.Millisecond) // poll interval of a bounded wait
		}
		p.mu.Lock()
		p.released[waiting[0]] = true
		p.mu.Unlock()
		for err := release(waiting[0]); err != nil; err = release(waiting[0]) {
			// ENXIO: the host has made its FIFO but not opened it yet.
			if !errors.Is(err, syscall.ENXIO) || time.Now().After(deadline) {
				p.t.Fatalf("letting %s go: %v", waiting[0], err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (p *ForksProbe) unreleased(all []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.DeleteFunc(all, func(f string) bool { return p.released[f] })
}

// release writes a line to the FIFO of a host blocked reading it; ENXIO
// when no host reads it (yet).
func release(fifo string) error {
	f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("go\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Seen returns, for each host that started, how many hosts were running
// when it did, itself included, as the hosts wrote them.
func (p *ForksProbe) Seen() []int {
	p.t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		p.t.Fatal(err)
	}
	var seen []int
	for _, l := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(l)
		if err != nil {
			p.t.Fatalf("%s: %q is not a count", p.log, l)
		}
		seen = append(seen, n)
	}
	return seen
}
