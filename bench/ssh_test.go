package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/dispatch/local"
	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
	"github.com/0ops/exed/plugins/sshnative/inventory"
	exehttp "github.com/0ops/exed/transport/http"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fanout is the parallelism of every contender, as ansible -f 50.
const fanout = 50

// sshFleet is one test sshd and n inventory aliases of it.
type sshFleet struct {
	server  *sshtest.Server
	inv     *inventory.Inventory
	targets []string
}

func newSSHFleet(b *testing.B, n int) *sshFleet {
	b.Helper()
	s := sshtest.Start(b, sshtest.Options{})
	text := fmt.Sprintf("[fleet]\nh[0001:%04d] ansible_host=127.0.0.1 ansible_port=%d\n", n, s.Port)
	inv, err := inventory.Parse(strings.NewReader(text), "bench")
	if err != nil {
		b.Fatal(err)
	}
	targets, _ := inv.Match("fleet")
	return &sshFleet{server: s, inv: inv, targets: targets}
}

func (f *sshFleet) executor(b *testing.B) *sshnative.Executor {
	x, err := sshnative.New(sshnative.Config{Inventory: f.inv, Concurrency: fanout, SSH: sshnative.SSHOptions{
		User: f.server.User, KeyFiles: []string{f.server.ClientKey}, KnownHosts: []string{f.server.KnownHosts}, NoAgent: true}})
	if err != nil {
		b.Fatal(err)
	}
	return x
}

// api serves an executor over HTTP like the reference server.
func api(b *testing.B, x exe.Executor) (*httptest.Server, *exe.Engine) {
	store := memory.New(memory.Options{})
	disp := local.New(&exe.Runner{Store: store, Executor: x}, local.Options{Workers: 4})
	eng, err := exe.NewEngine(exe.Config{Store: store, Dispatcher: disp, Executor: x})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(exehttp.New(eng, exehttp.Options{}))
	b.Cleanup(func() { srv.Close(); _ = disp.Shutdown(context.Background()) })
	return srv, eng
}

// executeAll is one end-to-end job: POST /execute "true" to every target,
// then follow it to its end; every host must have succeeded.
func executeAll(b *testing.B, srv *httptest.Server, eng *exe.Engine, targets []string) {
	body, _ := json.Marshal(map[string]any{"targets": targets, "cmd": "true"})
	res, err := http.Post(srv.URL+"/execute", "application/json", strings.NewReader(string(body)))
	if err != nil {
		b.Fatal(err)
	}
	var out map[string]string
	_ = json.NewDecoder(res.Body).Decode(&out)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("POST /execute: %d", res.StatusCode)
	}
	job, err := eng.Follow(context.Background(), out["jid"], func(exe.Event) error { return nil })
	if err != nil || job.State != exe.JobDone {
		full, _ := eng.Job(context.Background(), out["jid"], true)
		b.Fatalf("job did not end Done: %v %+v", err, full)
	}
}

// bareLoop is the floor any SSH executor can reach here: dial, session,
// run, with the same parallelism; clients non-nil reuses connections.
func bareLoop(b *testing.B, f *sshFleet, clients []*ssh.Client) {
	key, err := os.ReadFile(f.server.ClientKey)
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := ssh.ParsePrivateKey(key)
	hk, _ := knownhosts.New(f.server.KnownHosts)
	cfg := &ssh.ClientConfig{User: f.server.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 30 * time.Second}
	addr := net.JoinHostPort(f.server.Addr, strconv.Itoa(f.server.Port))
	sem := make(chan struct{}, fanout)
	var wg sync.WaitGroup
	for i := range f.targets {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			c := (*ssh.Client)(nil)
			if clients != nil {
				c = clients[i]
			}
			if c == nil {
				var err error
				if c, err = ssh.Dial("tcp", addr, cfg); err != nil {
					b.Error(err)
					return
				}
				if clients != nil {
					clients[i] = c
				} else {
					defer c.Close()
				}
			}
			s, err := c.NewSession()
			if err != nil {
				b.Error(err)
				return
			}
			if err := s.Run("true"); err != nil {
				b.Error(err)
			}
			s.Close()
		}(i)
	}
	wg.Wait()
}

// BenchmarkSSHFanout runs "true" on N aliases of one loopback sshd: exed end
// to end (HTTP POST /execute to job Done) with new connections (cold) and
// pooled ones (warm), against a bare x/crypto/ssh loop, cold and warm.
// sshtest logs in as a user whose shell reads no rc files.
func BenchmarkSSHFanout(b *testing.B) {
	for _, n := range []int{50, 200} {
		f := newSSHFleet(b, n)
		b.Run(fmt.Sprintf("N=%d/exed-cold", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				x := f.executor(b)
				srv, eng := api(b, x)
				b.StartTimer()
				executeAll(b, srv, eng, f.targets)
				b.StopTimer()
				x.Close()
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("N=%d/exed-warm", n), func(b *testing.B) {
			x := f.executor(b)
			defer x.Close()
			srv, eng := api(b, x)
			executeAll(b, srv, eng, f.targets) // fill the pool
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				executeAll(b, srv, eng, f.targets)
			}
		})
		b.Run(fmt.Sprintf("N=%d/bare-cold", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				bareLoop(b, f, nil)
			}
		})
		b.Run(fmt.Sprintf("N=%d/bare-warm", n), func(b *testing.B) {
			clients := make([]*ssh.Client, len(f.targets))
			bareLoop(b, f, clients)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bareLoop(b, f, clients)
			}
			b.StopTimer()
			for _, c := range clients {
				if c != nil {
					c.Close()
				}
			}
		})
	}
}
