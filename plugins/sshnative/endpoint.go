package sshnative

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// endpoint is where and as whom sshnative connects to reach a host, and
// how it trusts it: what OpenSSH's ssh uses for the command line Ansible
// builds and the same ssh_config files.
type endpoint struct {
	// name says in messages which host this is: the inventory host, or
	// "jump host SPEC".
	name string
	// alias is the host ssh is given (ansible_host, else the inventory
	// name; for a jump host, its host as written), which ssh_config's Host
	// patterns match.
	alias    string
	hostname string // what is dialled: ssh_config's HostName, else alias
	port     int
	user     string
	// jump is the host this one is reached through (ProxyJump); nil:
	// directly.
	jump *endpoint
	// trust is how the host is authenticated and trusted, and the
	// timeouts: the same for most hosts, so shared (see share).
	*trust
}

// trust is the part of an endpoint that is the same for every host a
// configuration treats alike. Read it, never change it: it is shared.
type trust struct {
	// identities are the private key files tried, in order: the command
	// line's (ansible_private_key_file, -i), then ssh_config's.
	identities []string
	// identitiesOnly (IdentitiesOnly yes) keeps ssh-agent keys that are
	// not among identities out.
	identitiesOnly bool
	knownHosts     []string // user known_hosts files; missing ones are empty
	strict         string   // StrictHostKeyChecking: "yes", "accept-new" or "no"
	// hashKnownHosts (HashKnownHosts yes) hashes the names accept-new adds.
	hashKnownHosts bool
	connectTimeout time.Duration
	keepAlive      time.Duration // ServerAliveInterval; 0: none
}

// addr is the TCP address dialled, and the name known_hosts is searched
// for ("[host]:port" when the port is not 22).
func (e *endpoint) addr() string { return net.JoinHostPort(e.hostname, strconv.Itoa(e.port)) }

// key identifies a connection to share: the same login at the same
// address with the same keys through the same hops, its host key checked
// the same way. A pooled connection is found by it, so a host whose
// settings change (an inventory reload) gets a connection of its new
// ones, never the one made for the old.
func (e *endpoint) key() string { return string(e.appendKey(nil)) }

// appendKey appends key() to b: "user@addr (strict known_hosts...)
// [keys identities... [only]] [via hop's key]".
func (e *endpoint) appendKey(b []byte) []byte {
	b = append(b, e.user...)
	b = append(b, '@')
	// addr(), as net.JoinHostPort writes it.
	if strings.IndexByte(e.hostname, ':') >= 0 {
		b = append(b, '[')
		b = append(b, e.hostname...)
		b = append(b, ']')
	} else {
		b = append(b, e.hostname...)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(e.port), 10)
	b = append(b, " ("...)
	b = append(b, e.strict...)
	b = append(b, ' ')
	b = appendJoined(b, e.knownHosts)
	b = append(b, ')')
	if len(e.identities) > 0 || e.identitiesOnly {
		b = append(b, " keys "...)
		b = appendJoined(b, e.identities)
		if e.identitiesOnly {
			b = append(b, " only"...)
		}
	}
	if e.jump != nil {
		b = append(b, " via "...)
		b = e.jump.appendKey(b)
	}
	return b
}

// appendJoined appends list joined by spaces, as strings.Join.
func appendJoined(b []byte, list []string) []byte {
	for i, s := range list {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return b
}

// resolver turns a host's connection settings into an endpoint as ssh
// would: command-line options first (in the order Ansible writes them),
// then ssh_config, then ssh's defaults.
type resolver struct {
	opts SSHOptions
	// configPaths are the ssh_config files read when the command line has
	// no -F; nil: none.
	configPaths []string
	// lenient are the files of configPaths skipped, with a warning, when
	// they do not load (see sshConfigCache).
	lenient map[string]bool
	// configs are the ssh_config files as read since the start or the
	// last reload (reloadConfigs replaces them).
	configs   atomic.Pointer[sshConfigCache]
	localUser string
	home      string
	// knownHosts are the known_hosts files of [sshnative] known_hosts (set
	// again by a reload; see setKnownHosts).
	knownHosts atomic.Pointer[knownHostsFiles]
}

// knownHostsFiles are the known_hosts files of hosts whose ssh_config
// names none, shared by their endpoints (read, never changed).
type knownHostsFiles struct {
	// user are the user files: SSHOptions.KnownHosts, else ssh's default.
	user []string
	// all are user, then the global ones, for a host whose ssh_config
	// sets neither UserKnownHostsFile nor GlobalKnownHostsFile.
	all []string
}

func newResolver(opts SSHOptions) *resolver {
	r := &resolver{opts: opts}
	if u, err := user.Current(); err == nil {
		r.localUser, r.home = u.Username, u.HomeDir
	}
	if r.home == "" {
		r.home, _ = os.UserHomeDir()
	}
	switch {
	case opts.SSHConfig == "none":
	case opts.SSHConfig != "":
		r.configPaths = []string{opts.SSHConfig}
	default:
		r.configPaths = defaultSSHConfigPaths()
		r.lenient = map[string]bool{systemSSHConfig: true}
	}
	r.configs.Store(r.newConfigCache())
	r.setKnownHosts(opts.KnownHosts)
	return r
}

// newConfigCache is an empty cache of ssh_config files: each file is read
// when first needed.
func (r *resolver) newConfigCache() *sshConfigCache {
	return &sshConfigCache{lenient: r.lenient, home: r.home}
}

// setKnownHosts makes files ([sshnative] known_hosts; empty: ssh's
// ~/.ssh/known_hosts and known_hosts2) the user known_hosts files of the
// endpoints resolved from then on.
func (r *resolver) setKnownHosts(files []string) {
	user := slices.Clip(slices.Clone(files))
	if len(user) == 0 {
		user = []string{filepath.Join(r.home, ".ssh", "known_hosts"), filepath.Join(r.home, ".ssh", "known_hosts2")}
	}
	r.knownHosts.Store(&knownHostsFiles{user: user, all: slices.Clip(append(slices.Clone(user), globalKnownHosts...))})
}

// check loads the configured ssh_config files, so that a file that does
// not parse stops the start (the system's is skipped with a warning); a
// configured one must exist. It returns the warnings.
func (r *resolver) check() ([]string, error) {
	return r.checkIn(r.configs.Load())
}

func (r *resolver) checkIn(c *sshConfigCache) ([]string, error) {
	if r.opts.SSHConfig != "" && r.opts.SSHConfig != "none" {
		if _, err := os.Stat(r.opts.SSHConfig); err != nil {
			return nil, fmt.Errorf("ssh_config: %w", err)
		}
	}
	files, err := c.load(r.configPaths)
	if err != nil {
		return nil, err
	}
	c.configured.Store(files)
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.warnings), nil
}

// reloadConfigs reads the ssh_config files again, as check does at the
// start: the configured ones, and those named by -F (each when first
// needed), for the hosts resolved from then on, as ssh reads them for
// every connection. A configured file that is gone or does not parse is
// an error, and the files as read before stay. It returns the warnings.
func (r *resolver) reloadConfigs() ([]string, error) {
	c := r.newConfigCache()
	warnings, err := r.checkIn(c)
	if err != nil {
		return nil, err
	}
	r.configs.Store(c)
	return warnings, nil
}

// whereError is a setting that would make ssh connect somewhere else or
// as someone else than sshnative can: the host is UNREACHABLE with it.
func whereError(format string, args ...any) error {
	return &unreachableError{fmt.Errorf(format, args...)}
}

// argsOf builds what Ansible's ssh connection passes to ssh for a host,
// in its order: ansible_ssh_args, StrictHostKeyChecking=no when host key
// checking is off, Port, IdentityFile, User, ConnectTimeout
// (ansible_ssh_timeout, else SSHOptions.ConnectTimeout),
// ansible_ssh_common_args, ansible_ssh_extra_args. remoteUser is the
// login user Ansible knows of ("" when none: ssh chooses).
func (r *resolver) argsOf(c connSettings, remoteUser string) (*sshArgs, error) {
	a := &sshArgs{opts: map[string]string{}}
	words := func(name, value string) error {
		if value == "" {
			return nil
		}
		w, err := splitShellWords(value)
		if err != nil {
			return argsError(name, value, err)
		}
		a.parse(w)
		return nil
	}
	if err := words("ansible_ssh_args", c.SSHArgs); err != nil {
		return nil, err
	}
	if c.HostKeyChecking != nil && !*c.HostKeyChecking {
		a.option("stricthostkeychecking", "no", "")
	}
	if c.Port != 0 {
		a.option("port", strconv.Itoa(c.Port), "")
	}
	if c.PrivateKeyFile != "" {
		a.option("identityfile", c.PrivateKeyFile, "")
	}
	if remoteUser != "" {
		a.option("user", remoteUser, "")
	}
	if c.Timeout != "" {
		a.option("connecttimeout", c.Timeout, "")
	} else if r.opts.ConnectTimeout > 0 {
		a.option("connecttimeout", strconv.Itoa(int((r.opts.ConnectTimeout+time.Second-1)/time.Second)), "")
	}
	if err := words("ansible_ssh_common_args", c.SSHCommonArgs); err != nil {
		return nil, err
	}
	if err := words("ansible_ssh_extra_args", c.SSHExtraArgs); err != nil {
		return nil, err
	}
	return a, nil
}

// resolve returns the endpoint of an inventory host whose connection
// settings are c. An error is an *unreachableError saying what cannot be
// honoured.
func (r *resolver) resolve(name string, c connSettings, remoteUser string) (*endpoint, error) {
	e := new(endpoint)
	if err := r.resolveIn(nil, e, name, c, remoteUser); err != nil {
		return nil, err
	}
	return e, nil
}

// resolveIn is resolve into e, with the arguments and trust of the
// endpoint (and of its hops) shared in s (nil: none shared).
func (r *resolver) resolveIn(s *shared, e *endpoint, name string, c connSettings, remoteUser string) error {
	a, err := s.argsOf(r, c, remoteUser)
	if err != nil {
		return &unreachableError{err}
	}
	if len(a.refused) > 0 {
		return whereError("sshnative cannot apply %s from the host's ssh arguments: ssh would connect differently", strings.Join(a.refused, ", "))
	}
	files, err := r.filesFor(a)
	if err != nil {
		return &unreachableError{err}
	}
	return r.endpointOf(s, e, name, c.Address, a, files, 0)
}

// filesFor returns the ssh_config files for a command line: its -F file,
// else the configured ones.
func (r *resolver) filesFor(a *sshArgs) (*sshConfigFiles, error) {
	c := r.configs.Load()
	if a.configFile == "" {
		if f := c.configured.Load(); f != nil {
			return f, nil
		}
		f, err := c.load(r.configPaths)
		if err == nil {
			// Loaded once, as the cache would give them anyway: without a
			// lock and a key per host.
			c.configured.Store(f)
		}
		return f, err
	}
	p := r.expandPath(a.configFile, nil)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("ssh -F %s: %w", a.configFile, err)
	}
	return c.load([]string{p})
}

// maxJumpDepth bounds ProxyJump chains, which ssh_config can make loop.
const maxJumpDepth = 8

// endpointOf applies the command line a and the ssh_config files to
// alias, into e. depth counts the hops already resolved.
func (r *resolver) endpointOf(s *shared, e *endpoint, name, alias string, a *sshArgs, files *sshConfigFiles, depth int) error {
	if depth > maxJumpDepth {
		return whereError("ProxyJump chain of more than %d hops (does ssh_config make it loop?)", maxJumpDepth)
	}
	var hc hostConfig
	files.settings(&hc, alias, r.localUser, a.opts)
	get := func(key string) (string, bool) {
		if v, ok := a.opts[key]; ok {
			return v, true
		}
		return hc.get(key)
	}
	// The trust is made here and shared at the end (s.trust).
	t := trust{strict: "yes"}
	*e = endpoint{name: name, alias: alias, hostname: alias, port: 22, user: r.localUser}
	if refused := hc.refused(); len(refused) > 0 {
		return whereError("sshnative cannot apply %s: %s", strings.Join(refused, ", "), refusalAdvice)
	}
	if v, ok := get("hostname"); ok {
		e.hostname = expandTokens(v, map[byte]string{'h': alias})
	}
	// ssh lower-cases the name it connects to (and looks up in
	// known_hosts), not an address.
	e.hostname = canonicalHost(e.hostname)
	if v, ok := get("port"); ok {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return whereError("Port %q is not a port number", v)
		}
		e.port = p
	}
	if v, ok := get("user"); ok {
		e.user = v
	}
	// The tokens only for a path that has one: they cost two system
	// calls, and most hosts have none.
	var tokens map[byte]string
	tok := func(path string) map[byte]string {
		if tokens == nil && strings.Contains(path, "%") {
			tokens = r.tokens(e)
		}
		return tokens
	}
	var listed []string
	for _, f := range append(append([]string(nil), a.identities...), hc.identities...) {
		if strings.EqualFold(f, "none") || slices.Contains(listed, f) {
			continue // ssh lists a file once
		}
		listed = append(listed, f)
		t.identities = append(t.identities, r.expandPath(f, tok(f)))
	}
	if v, ok := get("identitiesonly"); ok {
		t.identitiesOnly = yes(v)
	}
	user, userSet := get("userknownhostsfile")
	global, globalSet := get("globalknownhostsfile")
	kh := r.knownHosts.Load()
	if !userSet && !globalSet {
		// The same files for every host: one list, shared.
		t.knownHosts = kh.all
	} else {
		t.knownHosts = kh.user
		if userSet {
			t.knownHosts = r.pathList(user, tok(user))
		}
		globals := globalKnownHosts
		if globalSet {
			globals = r.pathList(global, tok(global))
		}
		t.knownHosts = append(t.knownHosts[:len(t.knownHosts):len(t.knownHosts)], globals...)
	}
	if v, ok := get("stricthostkeychecking"); ok {
		switch strings.ToLower(v) {
		case "yes", "ask", "true":
		case "accept-new":
			t.strict = "accept-new"
		case "no", "off", "false":
			t.strict = "no"
		default:
			return whereError("StrictHostKeyChecking %q is not yes, accept-new, no or ask", v)
		}
	}
	if v, ok := get("hashknownhosts"); ok {
		t.hashKnownHosts = yes(v)
	}
	if v, ok := get("connecttimeout"); ok && !strings.EqualFold(v, "none") {
		d, err := parseSSHTime(v)
		if err != nil {
			return whereError("ConnectTimeout %q: %v", v, err)
		}
		t.connectTimeout = d
	}
	t.keepAlive = r.opts.KeepAlive
	if v, ok := get("serveraliveinterval"); ok {
		d, err := parseSSHTime(v)
		if err != nil {
			return whereError("ServerAliveInterval %q: %v", v, err)
		}
		t.keepAlive = d
	}
	// ProxyJump and ProxyCommand exclude each other: the first read wins,
	// the command line before ssh_config.
	jump, jumpSet := a.opts["proxyjump"]
	if _, cmdSet := a.opts["proxycommand"]; !jumpSet && !cmdSet {
		cmd, cmdInConfig := hc.get("proxycommand")
		jump, jumpSet = hc.get("proxyjump")
		if cmdInConfig && (!jumpSet || hc.seq["proxycommand"] < hc.seq["proxyjump"]) {
			jumpSet = false
			if !strings.EqualFold(cmd, "none") {
				return whereError("sshnative cannot apply ProxyCommand %s (%s): ssh would connect through it; use ProxyJump", cmd, hc.from["proxycommand"])
			}
		}
	}
	if jumpSet && !strings.EqualFold(jump, "none") {
		hop, err := r.jumpChain(s, jump, files, depth)
		if err != nil {
			return err
		}
		e.jump = hop
	}
	e.trust = s.trust(t)
	return nil
}

// jumpChain resolves a ProxyJump value ("[user@]host[:port]", or
// "ssh://[user@]host[:port]", comma-separated: the first is reached
// first) into the last hop, each hop linked to the one before. As ssh
// does for the jump hosts it starts, each hop gets the user and port its
// spec gives, else ssh_config's for its host, and only the first hop may
// itself have a ProxyJump (from ssh_config).
func (r *resolver) jumpChain(s *shared, value string, files *sshConfigFiles, depth int) (*endpoint, error) {
	var prev *endpoint
	specs := strings.Split(value, ",")
	for i, spec := range specs {
		spec = strings.TrimSpace(spec)
		u, host, port, err := parseJumpSpec(spec)
		if err != nil {
			return nil, whereError("ProxyJump %q: %v", value, err)
		}
		a := &sshArgs{opts: map[string]string{}}
		if u != "" {
			a.opts["user"] = u
		}
		if port != "" {
			a.opts["port"] = port
		}
		if i > 0 {
			a.opts["proxyjump"] = "none" // reached through the hop before
		}
		hop := new(endpoint)
		err = r.endpointOf(s, hop, "jump host "+host, host, a, files, depth+1)
		if err != nil {
			var ue *unreachableError
			if errors.As(err, &ue) {
				return nil, whereError("jump host %s: %v", spec, ue.err)
			}
			return nil, err
		}
		if i > 0 {
			hop.jump = prev
		}
		prev = hop
	}
	return prev, nil
}

// parseJumpSpec splits one ProxyJump hop.
func parseJumpSpec(spec string) (user, host, port string, err error) {
	s := strings.TrimPrefix(spec, "ssh://")
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	host = s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", "", errors.New("unterminated [")
		}
		host, s = s[1:end], s[end+1:]
		if s != "" {
			if !strings.HasPrefix(s, ":") {
				return "", "", "", fmt.Errorf("%q after ]", s)
			}
			port = s[1:]
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		host, port = s[:i], s[i+1:]
	}
	if host == "" {
		return "", "", "", errors.New("no host")
	}
	if port != "" {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return "", "", "", fmt.Errorf("%q is not a port number", port)
		}
	}
	return user, host, port, nil
}

// globalKnownHosts are ssh's GlobalKnownHostsFile default.
var globalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}

// tokens are the percent tokens of ssh_config paths for e: %d home, %h
// host name, %n alias, %p port, %r remote user, %u local user, %i uid, %l
// local host name.
func (r *resolver) tokens(e *endpoint) map[byte]string {
	local, _ := os.Hostname()
	return map[byte]string{
		'd': r.home, 'h': e.hostname, 'n': e.alias, 'p': strconv.Itoa(e.port),
		'r': e.user, 'u': r.localUser, 'i': strconv.Itoa(os.Getuid()), 'l': local,
	}
}

// expandTokens replaces %x tokens as ssh does (%% is a percent sign);
// unknown tokens stay as written.
func expandTokens(s string, tokens map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := tokens[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// expandPath expands tokens and a leading ~ as ssh does for a file name.
func (r *resolver) expandPath(p string, tokens map[byte]string) string {
	if tokens != nil {
		p = expandTokens(p, tokens)
	}
	if p == "~" {
		return r.home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(r.home, p[2:])
	}
	if strings.HasPrefix(p, "~") {
		name, rest, _ := strings.Cut(p[1:], "/")
		if u, err := user.Lookup(name); err == nil {
			return filepath.Join(u.HomeDir, rest)
		}
	}
	return p
}

// pathList reads a list of files (UserKnownHostsFile): words, expanded;
// "none" is no file.
func (r *resolver) pathList(v string, tokens map[byte]string) []string {
	var out []string
	for _, f := range strings.Fields(v) {
		if strings.EqualFold(f, "none") {
			continue
		}
		out = append(out, r.expandPath(f, tokens))
	}
	return out
}

func yes(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "on":
		return true
	}
	return false
}

// parseSSHTime reads an ssh_config time: seconds, or a sequence of numbers
// each with a unit s, m, h, d or w ("1m30s").
func parseSSHTime(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	var total time.Duration
	num := ""
	for _, c := range strings.ToLower(v) {
		if c >= '0' && c <= '9' {
			num += string(c)
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return 0, fmt.Errorf("not a time")
		}
		unit := map[rune]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[c]
		if unit == 0 {
			return 0, fmt.Errorf("unknown unit %q", c)
		}
		total += time.Duration(n) * unit
		num = ""
	}
	if num != "" {
		n, _ := strconv.Atoi(num)
		total += time.Duration(n) * time.Second
	}
	return total, nil
}
