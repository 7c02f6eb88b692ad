// Package sshtest runs a real OpenSSH sshd for tests: on a free 127.0.0.1
// port, with throwaway host and client keys, key-only login for the current
// user (root when tests run as root), and a known_hosts file that trusts it.
// It counts the TCP connections sshd accepts, from sshd's own log, so tests
// can prove connection reuse, and tells which of its processes holds a
// connection, so tests can prove a connection went through it (a jump
// host). It also sets up what privilege escalation tests need: system
// accounts, their passwords and sudoers rules.
package sshtest

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
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
	"golang.org/x/crypto/ssh/agent"
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
	// HostKeys are all the host keys sshd offers, by key type
	// (ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoRSA).
	HostKeys map[string]ssh.PublicKey
	// HostCA is the certificate authority that signed the host keys, with
	// Options.HostCA; nil otherwise.
	HostCA ssh.PublicKey

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
	// User is the account Server.User names instead of TestUser, created
	// like it (EnsureUser) when tests run as root. Every account can log
	// in with the client key: the authorized_keys file is shared.
	User string
	// HostKeyTypes are the host keys sshd offers, among "ed25519",
	// "ecdsa" and "rsa", in sshd_config's order; default ed25519 only.
	// known_hosts lists them all.
	HostKeyTypes []string
	// HostCA signs the host keys with a throwaway certificate authority
	// (principal Addr) and has sshd present the certificates;
	// known_hosts then holds only a @cert-authority line for [Addr]:Port.
	HostCA bool
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
		login = TestUser
		if opts.User != "" {
			login = opts.User
		}
		EnsureUser(t, login)
		// The test user reads the files sshd serves it from this dir.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{Dir: dir, Addr: "127.0.0.1", User: login, sshd: sshd, HostKeys: map[string]ssh.PublicKey{}}
	types := opts.HostKeyTypes
	if len(types) == 0 {
		types = []string{"ed25519"}
	}
	var ca ssh.Signer
	if opts.HostCA {
		caPub := writeKey(t, filepath.Join(dir, "host_ca"), "ed25519")
		s.HostCA = caPub
		ca = readSigner(t, filepath.Join(dir, "host_ca"))
	}
	var hostKeyLines []string
	for _, typ := range types {
		path := filepath.Join(dir, "host_"+typ)
		pub := writeKey(t, path, typ)
		s.HostKeys[pub.Type()] = pub
		if s.HostKey == nil {
			s.HostKey = pub
		}
		hostKeyLines = append(hostKeyLines, "HostKey "+path)
		if ca != nil {
			cert := &ssh.Certificate{Key: pub, CertType: ssh.HostCert, KeyId: "exe-sshtest " + typ,
				ValidPrincipals: []string{s.Addr}, ValidBefore: ssh.CertTimeInfinity}
			if err := cert.SignCert(rand.Reader, ca); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
				t.Fatal(err)
			}
			hostKeyLines = append(hostKeyLines, "HostCertificate "+path+"-cert.pub")
		}
	}
	clientPub := writeKey(t, filepath.Join(dir, "client_ed25519"), "ed25519")
	s.ClientKey = filepath.Join(dir, "client_ed25519")
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Port = freePort(t)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	var known []string
	if ca != nil {
		known = append(known, "@cert-authority "+s.KnownHostsLine(s.HostCA))
	} else {
		for _, typ := range types {
			known = append(known, s.KnownHostsLine(s.HostKeys[keyType(typ)]))
		}
	}
	if err := os.WriteFile(s.KnownHosts, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := []string{
		fmt.Sprintf("Port %d", s.Port),
		"ListenAddress " + s.Addr,
	}
	cfg = append(cfg, hostKeyLines...)
	cfg = append(cfg,
		"PidFile "+filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile "+filepath.Join(dir, "authorized_keys"),
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
	)
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

// usersMu serialises account changes: useradd and chpasswd lock
// /etc/passwd and fail when another test of the process holds it.
var usersMu sync.Mutex

// EnsureUser creates a test account once per machine (it needs root): a
// system account with an empty home /var/lib/NAME (sshd complains on
// stderr when it is missing; it holds no rc files), shell /bin/sh, and the
// password field "*" (no password, but not "locked", which sshd would
// refuse even for key logins).
func EnsureUser(t testing.TB, name string) {
	t.Helper()
	testenv.NeedRoot(t)
	usersMu.Lock()
	defer usersMu.Unlock()
	home := "/var/lib/" + name
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--system", "--home-dir", home,
			"--shell", "/bin/sh", "--password", "*", name).CombinedOutput()
		if _, lookErr := user.Lookup(name); lookErr != nil {
			t.Fatalf("create test user %s: %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if u.HomeDir != home {
		if out, err := exec.Command("usermod", "--home", home, name).CombinedOutput(); err != nil {
			t.Fatalf("set home of %s: %v: %s", name, err, out)
		}
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// SetPassword gives a test account a password until the test ends (then
// "*" again): sudo asks for it, and su for the target's.
func SetPassword(t testing.TB, name, password string) {
	t.Helper()
	usersMu.Lock()
	defer usersMu.Unlock()
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(name + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		usersMu.Lock()
		defer usersMu.Unlock()
		_ = exec.Command("usermod", "--password", "*", name).Run()
	})
}

// Sudoers installs sudoers lines until the test ends, in a file of their
// own under /etc/sudoers.d, checked with visudo first. It needs sudo.
func Sudoers(t testing.TB, lines ...string) {
	t.Helper()
	testenv.NeedRoot(t)
	_, err := os.Stat("/usr/bin/sudo")
	testenv.Need(t, err == nil, "sudo at /usr/bin/sudo (Debian package sudo)")
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	// sudo skips files in sudoers.d whose names hold a dot.
	path := "/etc/sudoers.d/exe-sshtest-" + hex.EncodeToString(b)
	tmp := filepath.Join(t.TempDir(), "sudoers")
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-c", "-q", "-f", tmp).CombinedOutput(); err != nil {
		t.Fatalf("sudoers lines %q: %v: %s", lines, err, out)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
}

// KnownHostsLine is the known_hosts line that trusts key for this server,
// as OpenSSH writes it: [127.0.0.1]:PORT KEY.
func (s *Server) KnownHostsLine(key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("%s:%d", s.Addr, s.Port))}, key)
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

// keyType is the SSH key type of a HostKeyTypes name.
func keyType(name string) string {
	switch name {
	case "ecdsa":
		return ssh.KeyAlgoECDSA256
	case "rsa":
		return ssh.KeyAlgoRSA
	}
	return ssh.KeyAlgoED25519
}

// WriteKey writes a new private key of type "ed25519", "ecdsa" or "rsa"
// to path (OpenSSH format, no passphrase) and its public key to path.pub.
func WriteKey(t testing.TB, path, typ string) ssh.PublicKey {
	t.Helper()
	return writeKey(t, path, typ)
}

func writeKey(t testing.TB, path, typ string) ssh.PublicKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch typ {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("unknown key type %q", typ)
	}
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
	sshPub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatal(err)
	}
	return sshPub
}

func readSigner(t testing.TB, path string) ssh.Signer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return signer
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

// HoldsConnectionFrom tells whether one of this sshd's processes holds a
// TCP socket whose local port is port: with the client port another sshd
// reports in SSH_CONNECTION, it proves that this sshd (a jump host) opened
// that connection. It reads /proc/net/tcp and the processes' descriptors.
func (s *Server) HoldsConnectionFrom(port int) bool {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return false
	}
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			// local_address is HEXIP:HEXPORT; the inode is the tenth field.
			_, hexPort, ok := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	for _, pid := range append([]int{cmd.Process.Pid}, descendants(cmd.Process.Pid)...) {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[target] {
				return true
			}
		}
	}
	return false
}

// Authorize lets key log in too, as any account.
func (s *Server) Authorize(t testing.TB, key ssh.PublicKey) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(key)); err != nil {
		t.Fatal(err)
	}
}

// Agent runs a real ssh-agent until the test ends, holding keys, and
// returns its socket (for SSH_AUTH_SOCK).
func Agent(t testing.TB, keys ...any) string {
	t.Helper()
	bin, err := exec.LookPath("ssh-agent")
	testenv.Need(t, err == nil, "ssh-agent (Debian package openssh-client)")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(bin, "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	var c net.Conn
	for {
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent did not listen on %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the socket the agent creates
	}
	defer c.Close()
	ac := agent.NewClient(c)
	for _, k := range keys {
		if err := ac.Add(agent.AddedKey{PrivateKey: k, Comment: "exe-sshtest"}); err != nil {
			t.Fatal(err)
		}
	}
	return sock
}

// WriteEncryptedKey writes a new ed25519 private key encrypted with
// passphrase to path (and its public key to path.pub) and returns the
// private key, for Agent.
func WriteEncryptedKey(t testing.TB, path, passphrase string) (ssh.PublicKey, any) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// ClientPorts lists the source ports of the TCP connections sshd has
// accepted, from its log ("Connection from ADDR port N on ..."), oldest
// first: with HoldsConnectionFrom on another sshd, they tell who opened
// them.
func (s *Server) ClientPorts() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, line := range s.logTail {
		_, rest, ok := strings.Cut(line, "Connection from ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) >= 3 && f[1] == "port" {
			if p, err := strconv.Atoi(f[2]); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}
