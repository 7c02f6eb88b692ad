package sshnative

import "sync"

// DefaultOutputCap is the default limit on each captured output field.
const DefaultOutputCap = 1 << 20

// capped keeps the first limit bytes written to it and drops the rest,
// remembering that it did; it never fails a write, so the command is never
// blocked or killed for writing too much.
type capped struct {
	mu        sync.Mutex // SSH sessions write from their own goroutines
	limit     int
	buf       []byte
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - len(c.buf)
	if room >= len(p) {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if room > 0 {
		c.buf = append(c.buf, p[:room]...)
	}
	c.truncated = true
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

func (c *capped) Truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.truncated
}
