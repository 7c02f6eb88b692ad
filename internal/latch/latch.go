// Package latch gives the fake executors of tests named one-way signals:
// "gate g1 is open", "command X has started". A latch is a channel made
// on first use of its name, by whichever side comes first, and closed
// when it is opened, so that a wait before or after the opening sees it
// alike.
package latch

import "sync"

// Set is a set of latches by name. Its zero value is empty and ready;
// it is safe for concurrent use.
type Set struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// Chan returns the channel of name, closed once name is opened.
func (s *Set) Chan(name string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name)
}

// Open opens name, if it is not open yet.
func (s *Set) Open(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	closeOnce(s.get(name))
}

// OpenAll opens every latch the set has made so far, so that a test that
// stops early leaves nothing waiting on one.
func (s *Set) OpenAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.m {
		closeOnce(ch)
	}
}

// get is the channel of name, made on first use; s.mu is held.
func (s *Set) get(name string) chan struct{} {
	if s.m == nil {
		s.m = map[string]chan struct{}{}
	}
	if s.m[name] == nil {
		s.m[name] = make(chan struct{})
	}
	return s.m[name]
}

// closeOnce closes ch unless it is closed; s.mu is held, so no other
// close runs between the check and the close.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
