// Package sshtest runs a real OpenSSH sshd for tests: on a free 127.0.0.1
// port, with throwaway host and client keys, key-only login for the current
// user (root when tests run as root), and a known_hosts file that trusts it.
// It counts the TCP connections sshd accepts, from sshd's own log, so tests
// can prove connection reuse.
package sshtest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/0ops/exed/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is a running sshd.
type Server struct {
	Dir        string // holds keys, config, logs
	Addr       string // listen address (127.0.0.1)
	Port       int
	User       string // the user that can log in
	ClientKey  string // private key file of that user
	KnownHosts string // known_hosts trusting this server at Addr:Port
	HostKey    ssh.PublicKey

	sshd   string
	config string
	listen []string // the log lines that say every address is bound

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	conns   int
	logTail []string
}

// TestUser is the account tests log in as when they run as root: its shell
// is /bin/sh, so a session costs no rc files (root's bash would source
// ~/.bashrc for every SSH command).
const TestUser = "exe-sshtest"

// Options tune the server.
type Options struct {
	// CurrentUser logs in as the user running the tests (root in CI)
	// instead of TestUser: for tests that need its rights, such as
	// managing services.
	CurrentUser bool
	// ExtraConfig lines are appended to sshd_config.
	ExtraConfig []string
}

// Start starts sshd; the test fails (or skips, without
// EXE_REQUIRE_INTEGRATION=1) when sshd is not installed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	_, err := os.Stat(sshd)
	testenv.Need(t, err == nil, "OpenSSH server at /usr/sbin/sshd (Debian package openssh-server)")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Privilege separation needs this directory; it is missing on
		// machines where sshd never ran.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Not t.TempDir: its parent is private to root, and the test user must
	// reach the authorized_keys file and the shared directories in here.
	dir, err := os.MkdirTemp("", "exe-sshtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	login := u.Username
	if os.Geteuid() == 0 && !opts.CurrentUser {
		if err := ensureTestUser(); err != nil {
			t.Fatal(err)
		}
		login = TestUser
		// The test user reads the files sshd serves it from this dir.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{Dir: dir, Addr: "127.0.0.1", User: login, sshd: sshd}
	hostPub := writeKey(t, filepath.Join(dir, "host_ed25519"))
	s.HostKey = hostPub
	clientPub := writeKey(t, filepath.Join(dir, "client_ed25519"))
	s.ClientKey = filepath.Join(dir, "client_ed25519")
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Port = freePort(t)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("%s:%d", s.Addr, s.Port))}, hostPub)
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := []string{
		fmt.Sprintf("Port %d", s.Port),
		"ListenAddress " + s.Addr,
		"HostKey " + filepath.Join(dir, "host_ed25519"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"AuthenticationMethods publickey",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"UsePAM no",
		"StrictModes no",
		"PrintMotd no",
		"MaxStartups 2000",
		"MaxSessions 1000",
		"LogLevel VERBOSE",
	}
	cfg = append(cfg, opts.ExtraConfig...)
	for _, line := range cfg {
		if addr, ok := strings.CutPrefix(line, "ListenAddress "); ok {
			s.listen = append(s.listen, fmt.Sprintf("Server listening on %s port %d.", addr, s.Port))
		}
	}
	s.config = filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(s.config, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

// testUserHome is TestUser's home: it must exist (sshd complains on stderr
// otherwise) and holds no rc files.
const testUserHome = "/var/lib/exe-sshtest"

// ensureTestUser creates TestUser once per machine: a system account with
// an empty home, shell /bin/sh, and the password field "*" (no password,
// but not "locked", which sshd would refuse even for key logins).
func ensureTestUser() error {
	if _, err := user.Lookup(TestUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--home-dir", testUserHome,
			"--shell", "/bin/sh", "--password", "*", TestUser).CombinedOutput()
		if _, lookErr := user.Lookup(TestUser); lookErr != nil {
			return fmt.Errorf("create test user %s: %v: %s", TestUser, err, out)
		}
	}
	u, err := user.Lookup(TestUser)
	if err != nil {
		return err
	}
	if u.HomeDir != testUserHome {
		if out, err := exec.Command("usermod", "--home", testUserHome, TestUser).CombinedOutput(); err != nil {
			return fmt.Errorf("set home of %s: %v: %s", TestUser, err, out)
		}
	}
	if err := os.MkdirAll(testUserHome, 0o755); err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(testUserHome, uid, gid)
}

// WritableDir returns a fresh directory the login user can write to, for
// files a remote command leaves for the test to read.
func (s *Server) WritableDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(s.Dir, "shared-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatal(err)
	}
	return sshPub
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs sshd -D -e and waits for it to say it is listening.
func (s *Server) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(s.sshd, "-D", "-e", "-f", s.config)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		waiting := map[string]bool{}
		for _, l := range s.listen {
			waiting[l] = true
		}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			if strings.Contains(line, "Connection from ") {
				s.conns++
			}
			s.logTail = append(s.logTail, line)
			if len(s.logTail) > 200 {
				s.logTail = s.logTail[len(s.logTail)-200:]
			}
			s.mu.Unlock()
			// sshd binds its addresses one by one: ready once all are.
			for l := range waiting {
				if strings.Contains(line, l) {
					delete(waiting, l)
				}
			}
			if len(waiting) == 0 {
				once.Do(func() { close(ready) })
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("sshd exited at start:\n%s", s.Log())
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("sshd did not start:\n%s", s.Log())
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
}

// Connections is how many TCP connections sshd has accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Log returns sshd's last log lines.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logTail, "\n")
}

// Stop stops sshd and every per-connection process it forked, so that
// every connection it served is dropped. Only the sshd this Server started
// and its descendants are signalled, by PID.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	kids := descendants(cmd.Process.Pid)
	_ = cmd.Process.Kill()
	for _, pid := range kids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-exited
}

// Restart stops sshd, dropping every connection, and starts it again on the
// same port with the same keys.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// descendants lists the PIDs below pid, read from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], n)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
