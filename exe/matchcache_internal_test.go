package exe

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// An answer given while the version grew is of either inventory: it is
// kept only under the version read before the question, so a newer
// version never serves it.
func TestMatchCacheKeepsNoOlderAnswer(t *testing.T) {
	var c matchCache
	_, ok := c.get(2, "all")
	assert.False(t, ok)
	c.put(1, "all", []string{"old"})
	_, ok = c.get(2, "all")
	assert.False(t, ok, "an answer under version 1 is not one of version 2")
	c.put(2, "all", []string{"new"})
	hosts, ok := c.get(2, "all")
	assert.True(t, ok)
	assert.Equal(t, []string{"new"}, hosts)
	_, ok = c.get(3, "all")
	assert.False(t, ok, "a newer version drops every answer")
	_, ok = c.get(2, "all")
	assert.False(t, ok)
}

// The cache starts over when its bounds are reached, and keeps no answer
// larger than the names bound.
func TestMatchCacheBounds(t *testing.T) {
	var c matchCache
	for i := range maxCachedPatterns {
		c.put(1, string(rune('A'+i%26))+string(rune(i)), []string{"h"})
	}
	assert.Len(t, c.hosts, maxCachedPatterns)
	c.put(1, "one more", []string{"h"})
	assert.Len(t, c.hosts, 1, "started over")
	c.put(1, "huge", make([]string, maxCachedNames+1))
	_, ok := c.get(1, "huge")
	assert.False(t, ok)
	assert.LessOrEqual(t, c.names, maxCachedNames)
}

// A pattern longer than maxCachedPattern is answered, not kept: a request
// of many targets, or a huge GET /target pattern, would otherwise keep
// its bytes.
func TestMatchCacheKeepsNoLongPattern(t *testing.T) {
	var c matchCache
	long := string(make([]byte, maxCachedPattern+1))
	c.put(1, long, []string{})
	_, ok := c.get(1, long)
	assert.False(t, ok)
	short := string(make([]byte, maxCachedPattern))
	c.put(1, short, []string{})
	_, ok = c.get(1, short)
	assert.True(t, ok)
}
