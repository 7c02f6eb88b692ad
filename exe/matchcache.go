package exe

import "sync"

// Bounds of the Engine's match cache: past either, it starts over empty.
// A pattern's answer is at most the whole inventory, so the names bound
// is what keeps a cache of huge answers (GET /target on a large
// inventory, with many patterns) from growing without end.
// A pattern longer than maxCachedPattern bytes (a request's targets are
// one pattern) is not kept: keys would otherwise hold up to the server's
// request size each.
const (
	maxCachedPatterns = 4096
	maxCachedNames    = 1 << 20
	maxCachedPattern  = 4 << 10
)

// matchCache keeps Match answers under the executor's MatchVersion: an
// answer is kept only under the newest version seen, and every answer is
// dropped when a newer one is seen.
type matchCache struct {
	mu      sync.Mutex
	version uint64
	names   int
	hosts   map[string][]string
}

// get returns pattern's answer under version, if it is kept. The slice
// is shared: callers must not change it.
func (c *matchCache) get(version uint64, pattern string) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		if version > c.version {
			c.reset(version)
		}
		return nil, false
	}
	hosts, ok := c.hosts[pattern]
	return hosts, ok
}

// put keeps hosts as pattern's answer under version, unless a newer
// version was seen meanwhile (the answer may be of the older inventory).
func (c *matchCache) put(version uint64, pattern string, hosts []string) {
	if len(pattern) > maxCachedPattern {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version < c.version {
		return
	}
	if version > c.version || c.hosts == nil {
		c.reset(version)
	}
	if _, ok := c.hosts[pattern]; ok {
		return
	}
	if len(c.hosts) >= maxCachedPatterns || c.names+len(hosts) > maxCachedNames {
		c.reset(version)
		if len(hosts) > maxCachedNames {
			return
		}
	}
	c.hosts[pattern] = hosts
	c.names += len(hosts)
}

func (c *matchCache) reset(version uint64) {
	c.version, c.names, c.hosts = version, 0, map[string][]string{}
}
