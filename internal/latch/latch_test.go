package latch_test

import (
	"sync"
	"testing"

	"github.com/0ops/exed/internal/latch"
	"github.com/stretchr/testify/assert"
)

func isOpen(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A latch is the same channel whether it is asked for before or after it
// opens; opening it again, or all at once, is no fault.
func TestOpenBeforeAndAfterChan(t *testing.T) {
	var s latch.Set
	early := s.Chan("a")
	assert.False(t, isOpen(early))
	s.Open("a")
	s.Open("a")
	assert.True(t, isOpen(early), "a wait that began before the opening")
	assert.True(t, isOpen(s.Chan("a")), "a wait that begins after it")
	s.Open("b")
	assert.True(t, isOpen(s.Chan("b")), "opened before anyone asked for it")
	assert.False(t, isOpen(s.Chan("c")))
}

// OpenAll opens every latch made so far, open ones included, and no
// later one.
func TestOpenAll(t *testing.T) {
	var s latch.Set
	s.Open("a")
	b, c := s.Chan("b"), s.Chan("c")
	s.OpenAll()
	assert.True(t, isOpen(b))
	assert.True(t, isOpen(c))
	assert.False(t, isOpen(s.Chan("d")))
}

// Opens of one latch from many goroutines close its channel once.
func TestConcurrentOpens(t *testing.T) {
	var s latch.Set
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Open("a")
			s.OpenAll()
			<-s.Chan("a")
		}()
	}
	wg.Wait()
	assert.True(t, isOpen(s.Chan("a")))
}
