package sshnative

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	sshconfig "github.com/kevinburke/ssh_config"
)

// sshConfigFiles are the ssh_config files applied to a host, in OpenSSH's
// order: for each keyword the first file, and in it the first matching
// Host or Match block, that sets it wins.
type sshConfigFiles struct {
	paths []string
	files []*sshconfig.Config
	// blocks are each file's Host and Match blocks, in order.
	blocks [][]configBlock
}

// configBlock is a Host or Match block.
type configBlock struct {
	host *sshconfig.Host
	// match is a "Match host" (or "Match all") block: ssh compares it
	// with the host name set so far (HostName, %h expanded), not with the
	// name given, as a Host block.
	match bool
}

func blocksOf(f *sshconfig.Config) []configBlock {
	out := make([]configBlock, len(f.Hosts))
	for i, h := range f.Hosts {
		out[i] = configBlock{host: h, match: strings.HasPrefix(strings.TrimSpace(h.String()), "Match")}
	}
	return out
}

// hostConfig is what the files set for one host.
type hostConfig struct {
	first      map[string]string // lower-case keyword -> first value
	seq        map[string]int    // the order keywords were first set in
	from       map[string]string // lower-case keyword -> the file that set it
	identities []string          // every IdentityFile, in order
}

func (hc *hostConfig) get(key string) (string, bool) {
	v, ok := hc.first[key]
	return v, ok
}

// includedKeywords are looked up in an Include's files, which the parser
// does not let us walk: it matches them against the name given.
var includedKeywords = []string{"hostname", "port", "user", "identitiesonly", "proxyjump", "proxycommand",
	"userknownhostsfile", "globalknownhostsfile", "stricthostkeychecking", "connecttimeout", "serveraliveinterval",
	"remotecommand", "hostkeyalias", "canonicalizehostname", "tunnel", "localforward", "remoteforward", "dynamicforward"}

// settings reads the files for alias in one pass, as ssh does: blocks in
// order, a Host block matched against alias, a Match block against the
// host name set so far; the first value of each keyword wins, and
// IdentityFile values add up.
func (c *sshConfigFiles) settings(alias string) *hostConfig {
	hc := &hostConfig{first: map[string]string{}, seq: map[string]int{}, from: map[string]string{}}
	if c == nil {
		return hc
	}
	set := func(key, value, path string) {
		if key == "identityfile" {
			hc.identities = append(hc.identities, value)
			return
		}
		if _, ok := hc.first[key]; !ok {
			hc.first[key], hc.seq[key], hc.from[key] = value, len(hc.seq), path
		}
	}
	for i, blocks := range c.blocks {
		path := c.paths[i]
		for _, b := range blocks {
			target := alias
			if b.match {
				if hn, ok := hc.first["hostname"]; ok {
					target = expandTokens(hn, map[byte]string{'h': alias})
				}
			}
			if !b.host.Matches(target) {
				continue
			}
			for _, n := range b.host.Nodes {
				switch n := n.(type) {
				case *sshconfig.KV:
					set(strings.ToLower(n.Key), n.Value, path)
				case *sshconfig.Include:
					for _, key := range includedKeywords {
						if v := n.Get(target, key); v != "" {
							set(key, v, path)
						}
					}
					if vs, err := n.GetAll(target, "identityfile"); err == nil {
						for _, v := range vs {
							set("identityfile", v, path)
						}
					}
				}
			}
		}
	}
	return hc
}

// refused lists, as "Keyword value" with the file, the keywords set that
// change where or as whom a command runs and that sshnative cannot apply
// (see refusedKeywords); ProxyCommand is weighed against ProxyJump by the
// caller.
func (hc *hostConfig) refused() []string {
	var out []string
	for key := range refusedKeywords {
		if v, ok := hc.first[key]; ok && key != "proxycommand" && keywordRefused(key, v) {
			out = append(out, fmt.Sprintf("%s %s (%s)", canonicalKeyword(key), v, hc.from[key]))
		}
	}
	sort.Strings(out)
	return out
}

func canonicalKeyword(key string) string {
	switch key {
	case "proxycommand":
		return "ProxyCommand"
	case "remotecommand":
		return "RemoteCommand"
	case "hostkeyalias":
		return "HostKeyAlias"
	case "canonicalizehostname":
		return "CanonicalizeHostname"
	case "tunnel":
		return "Tunnel"
	case "localforward":
		return "LocalForward"
	case "remoteforward":
		return "RemoteForward"
	case "dynamicforward":
		return "DynamicForward"
	}
	return key
}

// sshConfigCache parses each ssh_config file once.
type sshConfigCache struct {
	// lenient are files that are skipped, with a warning, when they do
	// not parse: the system's /etc/ssh/ssh_config, which may use Match
	// criteria the parser does not know for settings sshnative does not
	// use (crypto policies).
	lenient map[string]bool

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
		f, err := parseSSHConfig(p)
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
		out.paths = append(out.paths, p)
		out.files = append(out.files, f)
		out.blocks = append(out.blocks, blocksOf(f))
	}
	if cc.files == nil {
		cc.files = map[string]*sshConfigFiles{}
	}
	cc.files[key] = out
	return out, nil
}

// parseSSHConfig reads one ssh_config file. The parser panics on some
// malformed input instead of returning an error; that is an error here.
func parseSSHConfig(path string) (cfg *sshconfig.Config, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
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
