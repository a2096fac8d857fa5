package daemon

import (
	"slices"
	"sync"
	"testing"
)

// TestLatestSendsInOrderAndDropsStale: while one value is being sent,
// newer ones replace each other; the newest is sent next, never an older
// one after it.
func TestLatestSendsInOrderAndDropsStale(t *testing.T) {
	var (
		mu      sync.Mutex
		sent    []int
		started = make(chan struct{})
		release = make(chan struct{})
		done    = make(chan struct{})
	)
	l := &latest[int]{spawn: func(f func()) bool { go f(); return true }, send: func(v int) {
		if v == 1 {
			close(started)
			<-release
		}
		mu.Lock()
		sent = append(sent, v)
		n := len(sent)
		mu.Unlock()
		if v == 4 || n > 2 {
			close(done)
		}
	}}
	l.put(1)
	<-started
	for v := 2; v <= 4; v++ {
		l.put(v)
	}
	close(release)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sent, []int{1, 4}) {
		t.Fatalf("sent %v, want [1 4]", sent)
	}
}
