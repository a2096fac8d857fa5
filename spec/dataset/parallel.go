package dataset

import (
	"runtime"
	"sync"
)

// parallel calls fn over contiguous ranges [lo, hi) that cover [0, n), one
// goroutine per available core, each range at least minPer long. The result
// never depends on the split: fn must write only its own range.
func parallel(n, minPer int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+minPer-1)/max(minPer, 1))
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}
