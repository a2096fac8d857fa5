package par

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunEveryShareOnce: every share runs exactly once per loop, for every
// split, across many loops, including after the workers have parked.
func TestRunEveryShareOnce(t *testing.T) {
	t.Parallel()
	tm := newTeam(4)
	for loop := range 2000 {
		n := 1 + loop%4
		var counts [4]atomic.Int32
		tm.Run(n, func(i int) { counts[i].Add(1) })
		for i := range 4 {
			want := int32(0)
			if i < n {
				want = 1
			}
			if got := counts[i].Load(); got != want {
				t.Fatalf("loop %d (n=%d): share %d ran %d times", loop, n, i, got)
			}
		}
		if loop%500 == 499 {
			time.Sleep(2 * spinLimit) // the workers park
		}
	}
}

// TestRunConcurrentCallers: loops from several goroutines at once (one
// holds the team, the others fall back to fresh goroutines) each run every
// share once.
func TestRunConcurrentCallers(t *testing.T) {
	t.Parallel()
	tm := newTeam(3)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				var sum atomic.Int32
				tm.Run(3, func(i int) { sum.Add(int32(1 << i)) })
				if sum.Load() != 7 {
					t.Errorf("shares summed to %d, want 7", sum.Load())
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRunTooManyShares panics rather than silently dropping work.
func TestRunTooManyShares(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("Run with more shares than the team did not panic")
		}
	}()
	Shared(2).Run(3, func(int) {})
}

func BenchmarkRun(b *testing.B) {
	tm := Shared(2)
	var x [2]int64
	for b.Loop() {
		tm.Run(2, func(i int) { x[i]++ })
	}
}
