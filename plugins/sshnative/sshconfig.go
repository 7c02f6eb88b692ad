package sshnative

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	sshconfig "github.com/kevinburke/ssh_config"
)

// sshConfigFiles are the ssh_config files applied to a host, in OpenSSH's
// order: for each keyword the first file, and in it the first matching
// Host or Match block, that sets it wins.
type sshConfigFiles struct {
	files []*configFile
}

// configFile is one ssh_config file as OpenSSH reads it: the lines before
// the first Host or Match line, then each Host or Match block, in order.
//
// The keyword lines are read by github.com/kevinburke/ssh_config; Host,
// Match and Include lines are read here, because the parser evaluates only
// the first criterion of a Match line (it takes "Match host a user b" for
// three host patterns), compares "?" with zero or one character, and
// evaluates an Include's files by its own rules.
type configFile struct {
	path   string
	blocks []*configBlock
}

// configBlock is the lines before the first Host or Match line (line 0),
// or a Host or Match line and the lines up to the next one.
type configBlock struct {
	line int
	// text is the Host or Match line as written, for messages.
	text string
	// hosts are a Host line's patterns; nil for a Match line.
	hosts []string
	match []matchCriterion
	// isMatch tells a Match block from a Host block.
	isMatch bool
	items   []configItem // in line order
}

// configItem is a keyword line, or an Include (kv nil) with the files it
// names (none when its pattern matches none).
type configItem struct {
	kv      *sshconfig.KV
	include []*configFile
}

// matchCriterion is one criterion of a Match line: "[!]attr [arg]".
type matchCriterion struct {
	negate bool
	attr   string // lower case
	arg    string
}

// matchAttrs are the Match criteria sshnative evaluates, as OpenSSH 9
// does. Those it refuses ("exec", "localnetwork", "tagged", ...) make the
// file fail to load: evaluating them differently would pick another
// block, so another address, port or user, than ssh.
var matchAttrs = map[string]bool{"all": true, "canonical": true, "final": true, "host": true,
	"originalhost": true, "user": true, "localuser": true}

// refusedMatchAttrs are the other criteria of OpenSSH 9: sshnative does
// not run commands (exec) nor look at the local network or the session.
var refusedMatchAttrs = map[string]bool{"exec": true, "localnetwork": true, "tagged": true, "command": true,
	"version": true, "sessiontype": true}

// maxIncludeDepth is OpenSSH's READCONF_MAX_DEPTH.
const maxIncludeDepth = 16

// parseConfigFile reads one ssh_config file and the files its Include
// lines name. system says it is the system-wide file, whose relative
// Include paths are in /etc/ssh (else in ~/.ssh, home). An error names the
// file and, where there is one, the line.
func parseConfigFile(path, home string, system bool, depth int) (*configFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(b), "\n")
	f := &configFile{path: path, blocks: []*configBlock{{}}}
	type include struct {
		line  int
		files []*configFile
	}
	includes := map[*configBlock][]include{}
	for i, raw := range lines {
		line := i + 1
		keyword, rest := splitKeyword(raw)
		cur := f.blocks[len(f.blocks)-1]
		switch strings.ToLower(keyword) {
		case "host":
			words, err := configWords(rest, false)
			if err != nil {
				return nil, fmt.Errorf("ssh_config %s:%d: %v", path, line, err)
			}
			if len(words) == 0 {
				return nil, fmt.Errorf("ssh_config %s:%d: Host without a pattern", path, line)
			}
			f.blocks = append(f.blocks, &configBlock{line: line, text: strings.TrimSpace(raw), hosts: words})
		case "match":
			crit, err := parseMatch(rest)
			if err != nil {
				return nil, fmt.Errorf("ssh_config %s:%d: %v", path, line, err)
			}
			f.blocks = append(f.blocks, &configBlock{line: line, text: strings.TrimSpace(raw), match: crit, isMatch: true})
		case "include":
			words, err := configWords(rest, false)
			if err != nil || len(words) == 0 {
				return nil, fmt.Errorf("ssh_config %s:%d: Include without a file name", path, line)
			}
			var files []*configFile
			for _, w := range words {
				inc, err := includedFiles(w, home, system, path, line, depth)
				if err != nil {
					return nil, err
				}
				files = append(files, inc...)
			}
			includes[cur] = append(includes[cur], include{line, files})
		default:
			continue
		}
		// The parser reads the keyword lines; a Host line keeps its
		// blocks in step, and what is read here is hidden from it.
		repl := "#"
		if !strings.EqualFold(keyword, "include") {
			repl = "Host *"
		}
		lines[i] = repl + strings.Repeat("\n", strings.Count(raw, "\n"))
	}
	cfg, err := decodeSSHConfig(path, []byte(strings.Join(lines, "")))
	if err != nil {
		return nil, err
	}
	if len(cfg.Hosts) != len(f.blocks) {
		return nil, fmt.Errorf("ssh_config %s: %d Host or Match lines read, the parser found %d", path, len(f.blocks)-1, len(cfg.Hosts)-1)
	}
	for i, h := range cfg.Hosts {
		b := f.blocks[i]
		incs := includes[b]
		for _, n := range h.Nodes {
			kv, ok := n.(*sshconfig.KV)
			if !ok {
				continue
			}
			for len(incs) > 0 && incs[0].line < kv.Pos().Line {
				b.items = append(b.items, configItem{include: incs[0].files})
				incs = incs[1:]
			}
			b.items = append(b.items, configItem{kv: kv})
		}
		for _, inc := range incs {
			b.items = append(b.items, configItem{include: inc.files})
		}
	}
	return f, nil
}

// includedFiles reads the files one Include word names: a glob, relative
// to ~/.ssh (or /etc/ssh for the system file); "~" only in user files.
// No file matching is no file, as in OpenSSH.
func includedFiles(word, home string, system bool, from string, line, depth int) ([]*configFile, error) {
	if depth+1 > maxIncludeDepth {
		return nil, fmt.Errorf("ssh_config %s:%d: Include nested more than %d deep (does it include itself?)", from, line, maxIncludeDepth)
	}
	p := word
	switch {
	case !system && (p == "~" || strings.HasPrefix(p, "~/")):
		p = filepath.Join(home, p[1:])
	case filepath.IsAbs(p):
	case system:
		p = filepath.Join("/etc/ssh", p)
	default:
		p = filepath.Join(home, ".ssh", p)
	}
	names, err := filepath.Glob(p)
	if err != nil {
		return nil, fmt.Errorf("ssh_config %s:%d: Include %s: %v", from, line, word, err)
	}
	var out []*configFile
	for _, name := range names {
		f, err := parseConfigFile(name, home, system, depth+1)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("%w (included from %s:%d)", err, from, line)
		}
		out = append(out, f)
	}
	return out, nil
}

// splitKeyword splits a line into its keyword and the rest, as OpenSSH
// does: the keyword ends at white space or "=", and one "=" with white
// space around it separates it from its arguments. A blank or comment line
// has no keyword.
func splitKeyword(line string) (keyword, rest string) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' || s[0] == '\n' || s[0] == '\r' {
		return "", ""
	}
	i := strings.IndexAny(s, " \t=\r\n")
	if i < 0 {
		return s, ""
	}
	keyword, rest = s[:i], strings.TrimLeft(s[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return keyword, rest
}

// configWords splits the arguments of a Host, Match or Include line as
// OpenSSH does: at white space (and, in a Match line, equals: "host=a"),
// a word in double quotes may hold either; a word starting with "#" ends
// the line.
func configWords(s string, equals bool) ([]string, error) {
	var out []string
	s = strings.TrimRight(s, "\r\n")
	sep := " \t"
	if equals {
		sep += "="
	}
	for {
		s = strings.TrimLeft(s, sep)
		if s == "" || s[0] == '#' {
			return out, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, errors.New("no closing quote")
			}
			out = append(out, s[1:end+1])
			s = s[end+2:]
			continue
		}
		i := strings.IndexAny(s, sep+`"`)
		if i < 0 {
			return append(out, s), nil
		}
		out = append(out, s[:i])
		s = s[i:]
	}
}

// parseMatch reads the criteria of a Match line with OpenSSH's rules:
// "all" ends the line and follows at most one other criterion, "canonical"
// and "final" take no argument, the others one; any criterion may be
// negated with "!". A criterion sshnative does not evaluate is an error
// wherever it is on the line.
func parseMatch(rest string) ([]matchCriterion, error) {
	words, err := configWords(rest, true)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("Match without a criterion")
	}
	var out []matchCriterion
	for i := 0; i < len(words); i++ {
		c := matchCriterion{attr: strings.ToLower(words[i])}
		if strings.HasPrefix(c.attr, "!") {
			c.negate, c.attr = true, c.attr[1:]
		}
		if !matchAttrs[c.attr] && !refusedMatchAttrs[c.attr] {
			return nil, fmt.Errorf("unknown Match criterion %q", words[i])
		}
		if !matchAttrs[c.attr] {
			return nil, fmt.Errorf("sshnative does not evaluate the Match criterion %q (it evaluates all, canonical, final, host, originalhost, user and localuser): ssh could pick another block than sshnative", words[i])
		}
		switch c.attr {
		case "all":
			if len(out) > 1 || i+1 < len(words) {
				return nil, fmt.Errorf("Match %q cannot be combined with other criteria", words[i])
			}
		case "canonical", "final":
		default:
			if i+1 >= len(words) {
				return nil, fmt.Errorf("Match %s without an argument", words[i])
			}
			i++
			c.arg = words[i]
		}
		out = append(out, c)
	}
	return out, nil
}

// hostConfig is what the files set for one host.
type hostConfig struct {
	first      map[string]string // lower-case keyword -> first value
	seq        map[string]int    // the order keywords were first set in
	from       map[string]string // lower-case keyword -> the file that set it
	line       map[string]int    // lower-case keyword -> its line in that file
	identities []string          // every IdentityFile, in order, once each
}

func (hc *hostConfig) get(key string) (string, bool) {
	v, ok := hc.first[key]
	return v, ok
}

// evalState is what Host and Match lines are compared with, as in
// OpenSSH's readconf.c.
type evalState struct {
	alias     string            // the host ssh is given
	localUser string            // the user running ssh
	cmd       map[string]string // command-line options, which come first
	// final is the second pass ssh makes when a Match line says "final":
	// Host lines are then compared with the host name, not the alias.
	final     bool
	finalHost string
	wantFinal bool
}

// settings reads the files for alias as ssh does: blocks in order, a Host
// line's patterns compared with alias, a Match line's criteria with the
// host name and user set so far (the command line's, cmd, else the
// files'); the first value of each keyword wins, and IdentityFile values
// add up. If a Match line says "final", ssh reads the files again with
// "final" and "canonical" true and Host lines compared with the host name
// (lower-cased); a value set in the first pass stays, and the host name
// cannot change. It fills hc, which the caller keeps (on its stack):
// its maps are made by the first keyword set, and most hosts match no
// block that sets one.
func (c *sshConfigFiles) settings(hc *hostConfig, alias, localUser string, cmd map[string]string) {
	if c == nil {
		return
	}
	st := &evalState{alias: alias, localUser: localUser, cmd: cmd}
	for _, f := range c.files {
		hc.walk(f, st, true, false)
	}
	if !st.wantFinal {
		return
	}
	st.final, st.finalHost = true, canonicalHost(st.hostname(hc))
	for _, f := range c.files {
		hc.walk(f, st, true, false)
	}
}

// hostname is the host name set so far: HostName with %h expanded, else
// the alias (readconf.c's match_cfg_line).
func (st *evalState) hostname(hc *hostConfig) string {
	hn, ok := st.cmd["hostname"]
	if !ok {
		hn, ok = hc.first["hostname"]
	}
	if !ok {
		return st.alias
	}
	return expandTokens(hn, map[byte]string{'h': st.alias})
}

// canonicalHost is the host name ssh connects to: lower-cased unless it
// is an address.
func canonicalHost(h string) string {
	if _, err := netip.ParseAddr(h); err == nil {
		return h
	}
	return strings.ToLower(h)
}

// walk applies one file. active tells whether the lines before its first
// Host or Match line apply (an Include in a block that does not match is
// read but never matches: never).
func (hc *hostConfig) walk(f *configFile, st *evalState, active, never bool) {
	for i, b := range f.blocks {
		cur := active
		if i > 0 {
			// Evaluated even when never, as ssh does, for "Match final".
			m := b.matches(st, hc)
			cur = !never && m
		}
		for _, it := range b.items {
			if it.kv == nil {
				for _, inc := range it.include {
					hc.walk(inc, st, cur, never || !cur)
				}
				continue
			}
			if cur {
				hc.set(strings.ToLower(it.kv.Key), it.kv.Value, f.path, it.kv.Pos().Line, st.final)
			}
		}
	}
}

func (hc *hostConfig) set(key, value, path string, line int, final bool) {
	if key == "identityfile" {
		for _, v := range hc.identities {
			if v == value {
				return
			}
		}
		hc.identities = append(hc.identities, value)
		return
	}
	if final && key == "hostname" {
		return // ssh has set it to the host name found in the first pass
	}
	if hc.first == nil {
		hc.first, hc.seq, hc.from, hc.line = map[string]string{}, map[string]int{}, map[string]string{}, map[string]int{}
	}
	if _, ok := hc.first[key]; !ok {
		hc.first[key], hc.seq[key], hc.from[key], hc.line[key] = value, len(hc.seq), path, line
	}
}

// matches evaluates a Host or Match line as OpenSSH's readconf.c does. A
// Match line is evaluated even when an earlier criterion failed, so that
// "final" is always seen.
func (b *configBlock) matches(st *evalState, hc *hostConfig) bool {
	if !b.isMatch {
		host := st.alias
		if st.final {
			host = st.finalHost
		}
		found := false
		for _, p := range b.hosts {
			neg := strings.HasPrefix(p, "!")
			if matchPattern(host, strings.TrimPrefix(p, "!")) {
				if neg {
					return false
				}
				found = true
			}
		}
		return found
	}
	result := true
	for _, c := range b.match {
		var r bool
		switch c.attr {
		case "all":
			if result {
				result = !c.negate
			}
			return result
		case "canonical", "final":
			if c.attr == "final" && !st.final {
				st.wantFinal = true
			}
			r = st.final
		case "host":
			host := st.finalHost
			if !st.final {
				host = st.hostname(hc)
			}
			r = matchPatternList(strings.ToLower(host), c.arg, true)
		case "originalhost":
			r = matchPatternList(strings.ToLower(st.alias), c.arg, true)
		case "user":
			u, ok := st.cmd["user"]
			if !ok {
				u, ok = hc.first["user"]
			}
			if !ok {
				u = st.localUser
			}
			r = matchPatternList(u, c.arg, false)
		case "localuser":
			r = matchPatternList(st.localUser, c.arg, false)
		}
		if r == c.negate {
			result = false
		}
	}
	return result
}

// matchPatternList is OpenSSH's match_pattern_list: pattern is a
// comma-separated list, an entry negated with "!" that matches rules s
// out; lower lower-cases the entries.
func matchPatternList(s, list string, lower bool) bool {
	positive := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if lower {
			p = strings.ToLower(p)
		}
		if matchPattern(s, p) {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

// matchPattern is OpenSSH's match_pattern: the whole of s against p, "*"
// matching any run of bytes and "?" exactly one.
func matchPattern(s, p string) bool {
	si, pi, starP, starS := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			starP, starS = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case starP >= 0:
			starS++
			si, pi = starS, starP+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// refused lists the keywords set that sshnative cannot apply and that
// matter (see refusedKeywords), each as "Keyword value (file:line; what
// ssh does with it)", sorted; ProxyCommand is weighed against ProxyJump by
// the caller.
func (hc *hostConfig) refused() []string {
	if len(hc.first) == 0 {
		return nil
	}
	var out []string
	for key, r := range refusedKeywords {
		if v, ok := hc.first[key]; ok && key != "proxycommand" && keywordRefused(key, v) {
			out = append(out, fmt.Sprintf("%s %s (%s:%d; %s)", r.name, v, hc.from[key], hc.line[key], r.why))
		}
	}
	sort.Strings(out)
	return out
}

// eachFile calls fn for every file read, included ones after the file
// that includes them.
func (c *sshConfigFiles) eachFile(fn func(*configFile)) {
	var walk func(f *configFile)
	walk = func(f *configFile) {
		fn(f)
		for _, b := range f.blocks {
			for _, it := range b.items {
				for _, inc := range it.include {
					walk(inc)
				}
			}
		}
	}
	for _, f := range c.files {
		walk(f)
	}
}

// sshConfigCache parses each ssh_config file once.
type sshConfigCache struct {
	// lenient are files that are skipped, with a warning, when they do
	// not load: the system's /etc/ssh/ssh_config, which may use Match
	// criteria sshnative does not evaluate, for settings it does not use.
	// They are system files: a relative Include is in /etc/ssh.
	lenient map[string]bool
	// home is the user's home directory, for Include paths.
	home string
	// configured are the resolver's configPaths' files once loaded.
	configured atomic.Pointer[sshConfigFiles]

	mu       sync.Mutex
	files    map[string]*sshConfigFiles // by the paths, joined with NUL
	warnings []string
}

// load parses the files that exist among paths (a path that does not exist
// is skipped, as OpenSSH skips a missing ~/.ssh/config; required ones are
// checked by the caller). An error names the file and the cause.
func (cc *sshConfigCache) load(paths []string) (*sshConfigFiles, error) {
	key := strings.Join(paths, "\x00")
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if f, ok := cc.files[key]; ok {
		return f, nil
	}
	out := &sshConfigFiles{}
	for _, p := range paths {
		f, err := parseConfigFile(p, cc.home, cc.lenient[p], 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil && cc.lenient[p] {
			cc.warnings = append(cc.warnings, fmt.Sprintf("%v: the file is not applied", err))
			continue
		}
		if err != nil {
			return nil, err
		}
		out.files = append(out.files, f)
	}
	if cc.files == nil {
		cc.files = map[string]*sshConfigFiles{}
	}
	cc.files[key] = out
	return out, nil
}

// decodeSSHConfig parses the keyword lines of one file. The parser panics
// on some malformed input instead of returning an error; that is an error
// here.
func decodeSSHConfig(path string, b []byte) (cfg *sshconfig.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("ssh_config %s: %v", path, r)
		}
	}()
	cfg, err = sshconfig.DecodeBytes(b)
	if err != nil {
		return nil, fmt.Errorf("ssh_config %s: %v", path, err)
	}
	return cfg, nil
}

// systemSSHConfig is the system-wide ssh_config.
const systemSSHConfig = "/etc/ssh/ssh_config"

// defaultSSHConfigPaths are the files ssh reads without -F: the user's,
// then the system's.
func defaultSSHConfigPaths() []string {
	var out []string
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, ".ssh", "config"))
	}
	return append(out, systemSSHConfig)
}
