package kernel

import (
	"sync"
	"testing"
	"time"
)

var sinkZZ [4]uint64

func TestZZProbe2(t *testing.T) {
	for _, g := range []int{1, 2, 1, 2} {
		var wg sync.WaitGroup
		start := time.Now()
		for i := range g {
			wg.Go(func() {
				x := uint64(i + 1)
				for range 300_000_000 {
					x = x*6364136223846793005 + 1442695040888963407
				}
				sinkZZ[i] = x
			})
		}
		wg.Wait()
		t.Logf("scalar goroutines %d: %v", g, time.Since(start))
	}
}
