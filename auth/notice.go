package auth

import "sync"

// notice tells its waiters that something changed: each channel wait
// returns is closed by the next signal. Take the channel before reading
// the state it is about, so that a change after the read closes it. The
// zero notice is ready for use and safe for concurrent use.
type notice struct {
	mu sync.Mutex
	ch chan struct{} // closed and dropped by signal; made by the first wait after
}

func (n *notice) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notice) signal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}
