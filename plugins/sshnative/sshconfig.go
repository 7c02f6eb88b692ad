package sshnative

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
}

// get returns the first value of key (case-insensitive) for the host
// alias, and whether any file sets it.
func (c *sshConfigFiles) get(alias, key string) (string, bool) {
	if c == nil {
		return "", false
	}
	for _, f := range c.files {
		if v, err := f.Get(alias, key); err == nil && v != "" {
			return v, true
		}
	}
	return "", false
}

// getAll returns every value of a keyword that adds up (IdentityFile).
func (c *sshConfigFiles) getAll(alias, key string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, f := range c.files {
		if vs, err := f.GetAll(alias, key); err == nil {
			out = append(out, vs...)
		}
	}
	return out
}

// firstOf tells which of two keywords comes first for alias, as OpenSSH
// reads the files (ProxyJump and ProxyCommand exclude each other: the
// first one read wins); "" when neither is set.
func (c *sshConfigFiles) firstOf(alias, a, b string) string {
	if c == nil {
		return ""
	}
	for _, f := range c.files {
		for _, h := range f.Hosts {
			if !h.Matches(alias) {
				continue
			}
			for _, n := range h.Nodes {
				switch n := n.(type) {
				case *sshconfig.KV:
					switch {
					case strings.EqualFold(n.Key, a):
						return a
					case strings.EqualFold(n.Key, b):
						return b
					}
				case *sshconfig.Include:
					// An Include does not say where in it a value is:
					// the keyword it sets first in our order wins.
					if n.Get(alias, a) != "" {
						return a
					}
					if n.Get(alias, b) != "" {
						return b
					}
				}
			}
		}
	}
	return ""
}

// refusedIn lists, as "Keyword value" with the file, the keywords set for
// alias that change where or as whom a command runs and that sshnative
// cannot apply (see refusedKeywords).
func (c *sshConfigFiles) refusedIn(alias string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for key := range refusedKeywords {
		if key == "proxycommand" {
			continue // weighed against ProxyJump by the caller
		}
		for i, f := range c.files {
			if v, err := f.Get(alias, key); err == nil && v != "" {
				if keywordRefused(key, v) {
					out = append(out, fmt.Sprintf("%s %s (%s)", canonicalKeyword(key), v, c.paths[i]))
				}
				break
			}
		}
	}
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
