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
	"testing"
	"time"

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
// racks inventory); every host through three levels of groups, an
// intersection and exclusion of nested groups (on the nested one).
var targetPatterns = []struct {
	gen      func(int) string
	patterns []string
}{
	{invgen.INI, []string{"all", "rack0001", "fleet:&racks:!rack0001", "node00*", "~node0000[0-9]", "racks[10:20]"}},
	{invgen.Nested, []string{"estate", "region0:&zone0*:!svc001"}},
}

// BenchmarkInventoryTarget is GET /target?pattern=... through the HTTP API
// (sshnative executor, in-process dispatcher) on the generated inventory:
// the pattern, the JSON of the selected host names, the HTTP round trip.
func BenchmarkInventoryTarget(b *testing.B) {
	for _, n := range sizes(b) {
		for _, t := range targetPatterns {
			benchmarkTarget(b, n, t.gen, t.patterns)
		}
	}
}

func benchmarkTarget(b *testing.B, n int, gen func(int) string, patterns []string) {
	{
		inv, err := inventory.Parse(strings.NewReader(gen(n)), "hosts.ini")
		if err != nil {
			b.Fatal(err)
		}
		x, err := sshnative.New(sshnative.Config{Inventory: inv})
		if err != nil {
			b.Fatal(err)
		}
		srv, _ := api(b, x)
		for _, p := range patterns {
			u := srv.URL + "/target?pattern=" + url.QueryEscape(p)
			b.Run(fmt.Sprintf("%d/%s", n, p), func(b *testing.B) {
				for b.Loop() {
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
			})
		}
		x.Close()
	}
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
