package bench

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/invgen"
	"github.com/0ops/exed/internal/testenv"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/plugins/sshnative"
)

var (
	inventorySizes   = flag.String("inventory.n", "1000,10000,100000", "inventory sizes (hosts) for the inventory benchmarks")
	inventoryAnsible = flag.Bool("inventory.ansible", false, "also time ansible-inventory --list on the same files (minutes at 100,000 hosts)")
)

func sizes(b *testing.B) []int {
	var out []int
	for _, s := range strings.Split(*inventorySizes, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			b.Fatalf("-inventory.n: %q is not a size", s)
		}
		out = append(out, n)
	}
	return out
}

// inventoryFormats are the generated inventories: racks under a parent and
// one group of every host, in INI and YAML; and (nested) 200 groups of
// hosts under zones, regions and an estate group, with variables at every
// level.
var inventoryFormats = []struct {
	name, ext string
	gen       func(int) string
}{{"ini", "ini", invgen.INI}, {"yml", "yml", invgen.YAML}, {"nested", "ini", invgen.Nested}}

// inventoryFile writes the generated inventory of n hosts.
func inventoryFile(b *testing.B, ext string, gen func(int) string, n int) string {
	p := filepath.Join(b.TempDir(), "hosts."+ext)
	if err := os.WriteFile(p, []byte(gen(n)), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkInventoryLoad is inventory.Load of a generated inventory
// (inventoryFormats), with the loaded inventory's live heap (heap-MB).
func BenchmarkInventoryLoad(b *testing.B) {
	for _, n := range sizes(b) {
		for _, f := range inventoryFormats {
			p := inventoryFile(b, f.ext, f.gen, n)
			b.Run(fmt.Sprintf("%s/%d", f.name, n), func(b *testing.B) {
				base := liveHeap()
				inv, err := inventory.Load(p)
				if err != nil {
					b.Fatal(err)
				}
				heap := float64(liveHeap()-base) / (1 << 20)
				runtime.KeepAlive(inv)
				inv = nil
				for b.Loop() {
					if _, err := inventory.Load(p); err != nil {
						b.Fatal(err)
					}
				}
				// After the loop, whose start resets reported metrics.
				b.ReportMetric(heap, "heap-MB")
			})
		}
	}
}

// liveHeap is the heap in use after collecting, in bytes.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// targetPatterns are what GET /target is asked: every host, one rack, an
// intersection with an exclusion, a glob, a regex, a subscript (on the
// racks inventory); every host, every host through three levels of
// groups, an intersection and exclusion of nested groups (on the nested
// one).
var targetPatterns = []struct {
	name     string
	gen      func(int) string
	patterns []string
}{
	{"ini", invgen.INI, []string{"all", "rack0001", "fleet:&racks:!rack0001", "node00*", "~node0000[0-9]", "racks[10:20]"}},
	{"nested", invgen.Nested, []string{"all", "estate", "region0:&zone0*:!svc001"}},
}

// BenchmarkInventoryTarget is GET /target?pattern=... through the HTTP API
// (sshnative executor, in-process dispatcher) on the generated inventories
// (named by inventory: "100000/nested/estate/cached"):
// the pattern, the JSON of the selected host names, the HTTP round trip.
// "uncached" is a pattern's first answer after a load (the Engine asks
// the executor: it is made to hide exe.MatchVersioner, so that every call
// is a first); "cached" a repeated one, which the Engine answers from its
// cache of Match answers. cpu-ms/op is the process's CPU time (server and
// client are in it; the machine is shared, and wall time counts others'
// work).
func BenchmarkInventoryTarget(b *testing.B) {
	for _, n := range sizes(b) {
		for _, t := range targetPatterns {
			benchmarkTarget(b, n, t.name, t.gen, t.patterns)
		}
	}
}

// uncached is an executor whose Match answers the Engine cannot keep.
type uncached struct{ exe.Executor }

func benchmarkTarget(b *testing.B, n int, name string, gen func(int) string, patterns []string) {
	inv, err := inventory.Parse(strings.NewReader(gen(n)), "hosts.ini")
	if err != nil {
		b.Fatal(err)
	}
	x, err := sshnative.New(sshnative.Config{Inventory: inv})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	servers := []struct {
		name string
		x    exe.Executor
	}{{"uncached", uncached{x}}, {"cached", x}}
	for _, s := range servers {
		srv, _ := api(b, s.x)
		for _, p := range patterns {
			u := srv.URL + "/target?pattern=" + url.QueryEscape(p)
			get(b, u) // the cached one's first: kept from here on
			b.Run(fmt.Sprintf("%d/%s/%s/%s", n, name, p, s.name), func(b *testing.B) {
				cpu := cpuTime(b)
				for b.Loop() {
					get(b, u)
				}
				b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// get is one GET whose body is read to its end; it must answer 200.
func get(b *testing.B, u string) {
	resp, err := http.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET /target: %s", resp.Status)
	}
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInventoryAnsible times ansible-inventory --list on the files
// BenchmarkInventoryLoad reads, with an empty configuration. It runs only
// with -inventory.ansible.
func BenchmarkInventoryAnsible(b *testing.B) {
	if !*inventoryAnsible {
		b.Skip("run with -inventory.ansible")
	}
	bin := testenv.NeedBinary(b, "ansible-inventory")
	home := b.TempDir()
	cfg := filepath.Join(home, "ansible.cfg")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	for _, n := range sizes(b) {
		for _, f := range inventoryFormats {
			p := inventoryFile(b, f.ext, f.gen, n)
			b.Run(fmt.Sprintf("%s/%d", f.name, n), func(b *testing.B) {
				for b.Loop() {
					cmd := exec.Command(bin, "-i", p, "--list", "--output", os.DevNull)
					cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "ANSIBLE_HOME="+home)
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					start := time.Now()
					if err := cmd.Run(); err != nil {
						b.Fatalf("%v: %v\n%s", cmd, err, stderr.String())
					}
					b.ReportMetric(time.Since(start).Seconds(), "s/run")
				}
			})
		}
	}
}
