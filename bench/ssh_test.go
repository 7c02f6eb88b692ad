package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/sshtest"
	"github.com/0ops/exed/inventory"
	"github.com/0ops/exed/jobstore/memory"
	"github.com/0ops/exed/plugins/sshnative"
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

// executor is sshnative as the reference server runs it: with a journal
// of running commands in a state directory.
func (f *sshFleet) executor(b *testing.B) *sshnative.Executor {
	x, err := sshnative.New(sshnative.Config{Inventory: f.inv, Forks: fanout, StateDir: b.TempDir(), SSH: sshnative.SSHOptions{
		User: f.server.User, KeyFiles: []string{f.server.ClientKey}, KnownHosts: []string{f.server.KnownHosts}, NoAgent: true}})
	if err != nil {
		b.Fatal(err)
	}
	return x
}

// api serves an executor over HTTP like the reference server.
func api(b *testing.B, x exe.Executor) (*httptest.Server, *exe.Engine) {
	store := memory.New(memory.Options{})
	eng, err := exe.NewEngine(exe.Config{Store: store, Executor: x, Dispatcher: exe.NewLocalDispatcher(exe.LocalOptions{Workers: 4})})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(exehttp.New(eng, exehttp.Options{}))
	b.Cleanup(func() { srv.Close(); _ = eng.Shutdown(context.Background()) })
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

// The fan-out benchmark's knobs: bench/ssh-fanout.sh sets them for the
// full comparison; the defaults keep `make bench` short.
var (
	fanoutN    = flag.String("fanout.n", "50,200", "comma-separated host alias counts for BenchmarkSSHFanout")
	fanoutReps = flag.Int("fanout.reps", 1, "runs of exed and the bare loop per benchmark iteration (their median is reported)")
	fanoutWith = flag.String("fanout.with", "exed,bare", "contenders: exed, bare, ansible-command, ansible-raw, pssh, pssh-curve25519")
)

// BenchmarkSSHFanout runs "true" on N aliases of one loopback sshd with
// parallelism 50 for every contender: exed end to end (HTTP POST /execute
// to job Done) with new connections (cold) and pooled ones (warm); a bare
// x/crypto/ssh loop, cold and warm; ansible's command and raw modules; and
// parallel-ssh with OpenSSH's default key exchange and with curve25519.
// sshtest logs in as a user whose shell reads no rc files.
func BenchmarkSSHFanout(b *testing.B) {
	with := map[string]bool{}
	for _, w := range strings.Split(*fanoutWith, ",") {
		with[strings.TrimSpace(w)] = true
	}
	for _, field := range strings.Split(*fanoutN, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 || n > 9999 {
			b.Fatalf("-fanout.n: %q is not a count from 1 to 9999", field)
		}
		f := newSSHFleet(b, n)
		if with["exed"] {
			benchExed(b, f)
		}
		if with["bare"] {
			benchBare(b, f)
		}
		for _, module := range []string{"command", "raw"} {
			if with["ansible-"+module] {
				b.Run(fmt.Sprintf("N=%d/ansible-%s", n, module), func(b *testing.B) { benchAnsible(b, f, module) })
			}
		}
		if with["pssh"] {
			b.Run(fmt.Sprintf("N=%d/pssh", n), func(b *testing.B) { benchPSSH(b, f) })
		}
		if with["pssh-curve25519"] {
			b.Run(fmt.Sprintf("N=%d/pssh-curve25519", n), func(b *testing.B) { benchPSSH(b, f, "-O", "KexAlgorithms=curve25519-sha256") })
		}
		f.server.Stop() // drops every connection a contender left behind
	}
}

// runs times each of b.N iterations of one (which times its own timed
// part) and reports the median as s/median: fan-outs of loopback sshd
// vary from run to run, and the median is the number the table shows.
// reps > 1 repeats the cheap contenders within each iteration.
func runs(b *testing.B, reps int, one func() time.Duration) {
	b.Helper()
	b.ResetTimer() // ns/op stays ~0: setup is not the measure, s/median is
	b.StopTimer()
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		for r := 0; r < reps; r++ {
			times = append(times, one())
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(times[len(times)/2].Seconds(), "s/median")
}

func timed(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

func benchExed(b *testing.B, f *sshFleet) {
	n := len(f.targets)
	b.Run(fmt.Sprintf("N=%d/exed-cold", n), func(b *testing.B) {
		runs(b, *fanoutReps, func() time.Duration {
			x := f.executor(b)
			defer x.Close()
			srv, eng := api(b, x)
			return timed(func() { executeAll(b, srv, eng, f.targets) })
		})
	})
	b.Run(fmt.Sprintf("N=%d/exed-warm", n), func(b *testing.B) {
		x := f.executor(b)
		defer x.Close()
		srv, eng := api(b, x)
		executeAll(b, srv, eng, f.targets) // fill the pool
		runs(b, *fanoutReps, func() time.Duration {
			return timed(func() { executeAll(b, srv, eng, f.targets) })
		})
	})
}

func benchBare(b *testing.B, f *sshFleet) {
	n := len(f.targets)
	b.Run(fmt.Sprintf("N=%d/bare-cold", n), func(b *testing.B) {
		runs(b, *fanoutReps, func() time.Duration {
			return timed(func() { bareLoop(b, f, nil) })
		})
	})
	b.Run(fmt.Sprintf("N=%d/bare-warm", n), func(b *testing.B) {
		clients := make([]*ssh.Client, len(f.targets))
		bareLoop(b, f, clients)
		defer func() {
			for _, c := range clients {
				if c != nil {
					c.Close()
				}
			}
		}()
		runs(b, *fanoutReps, func() time.Duration {
			return timed(func() { bareLoop(b, f, clients) })
		})
	})
}

// benchAnsible runs `ansible fleet -m <module> -a true -f 50`, each time
// with a new ControlPath directory, so every run opens its connections
// (ansible's ControlPersist would reuse them within 60 s). Each alias has
// its own ansible_control_path: they all point at one address, and the
// default path would make them share a single connection.
func benchAnsible(b *testing.B, f *sshFleet, module string) {
	bin := lookPath(b, "ansible", "ansible")
	runs(b, 1, func() time.Duration {
		// Short: control sockets live in sun_path (108 bytes).
		dir, err := os.MkdirTemp("", "exb-")
		if err != nil {
			b.Fatal(err)
		}
		var inv strings.Builder
		inv.WriteString("[fleet]\n")
		for _, t := range f.targets {
			fmt.Fprintf(&inv, "%s ansible_control_path=%s/%s\n", t, dir, t)
		}
		fmt.Fprintf(&inv, "[fleet:vars]\nansible_host=%s\nansible_port=%d\nansible_user=%s\n", f.server.Addr, f.server.Port, f.server.User)
		fmt.Fprintf(&inv, "ansible_ssh_private_key_file=%s\nansible_python_interpreter=/usr/bin/python3\n", f.server.ClientKey)
		fmt.Fprintf(&inv, "ansible_ssh_common_args='-o UserKnownHostsFile=%s -o IdentitiesOnly=yes -o BatchMode=yes'\n", f.server.KnownHosts)
		invFile := filepath.Join(dir, "inventory")
		if err := os.WriteFile(invFile, []byte(inv.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "fleet", "-i", invFile, "-m", module, "-a", "true", "-f", strconv.Itoa(fanout), "-o")
		cmd.Env = append(os.Environ(), "ANSIBLE_LOCAL_TEMP="+dir, "ANSIBLE_NOCOLOR=1", "ANSIBLE_DEPRECATION_WARNINGS=0")
		var out []byte
		took := timed(func() { out, err = cmd.CombinedOutput() })
		if err != nil {
			b.Fatalf("ansible -m %s: %v\n%s", module, err, tail(out))
		}
		if ok := strings.Count(string(out), " | CHANGED") + strings.Count(string(out), " | SUCCESS"); ok != len(f.targets) {
			b.Fatalf("ansible -m %s: %d of %d hosts succeeded\n%s", module, ok, len(f.targets), tail(out))
		}
		closeMasters(dir, f.targets)
		os.RemoveAll(dir)
		return took
	})
}

// closeMasters stops the ControlPersist masters ansible left behind.
func closeMasters(dir string, targets []string) {
	sem := make(chan struct{}, fanout)
	var wg sync.WaitGroup
	for _, t := range targets {
		sock := filepath.Join(dir, t)
		if _, err := os.Stat(sock); err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_ = exec.Command("ssh", "-o", "ControlPath="+sock, "-O", "exit", t).Run()
		}()
	}
	wg.Wait()
}

// benchPSSH runs parallel-ssh -p 50 on one host line per alias.
func benchPSSH(b *testing.B, f *sshFleet, extra ...string) {
	bin := lookPath(b, "parallel-ssh", "pssh")
	dir := b.TempDir()
	hosts := filepath.Join(dir, "hosts")
	line := fmt.Sprintf("%s:%d\n", f.server.Addr, f.server.Port)
	if err := os.WriteFile(hosts, []byte(strings.Repeat(line, len(f.targets))), 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{"-h", hosts, "-p", strconv.Itoa(fanout), "-l", f.server.User, "-t", "0",
		"-x", "-i " + f.server.ClientKey, "-O", "UserKnownHostsFile=" + f.server.KnownHosts,
		"-O", "IdentitiesOnly=yes", "-O", "BatchMode=yes"}
	args = append(append(args, extra...), "true")
	runs(b, 1, func() time.Duration {
		var out []byte
		var err error
		took := timed(func() { out, err = exec.Command(bin, args...).CombinedOutput() })
		if err != nil {
			b.Fatalf("parallel-ssh: %v\n%s", err, tail(out))
		}
		if ok := strings.Count(string(out), "[SUCCESS]"); ok != len(f.targets) {
			b.Fatalf("parallel-ssh: %d of %d hosts succeeded\n%s", ok, len(f.targets), tail(out))
		}
		return took
	})
}

// lookPath skips the benchmark when a contender is not installed.
func lookPath(b *testing.B, name, debian string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		b.Skipf("%s is not installed (Debian package %s)", name, debian)
	}
	return p
}

func tail(out []byte) string {
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return string(out)
}
