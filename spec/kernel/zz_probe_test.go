package kernel

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestZZProbe(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := newProblem(rng, 64, 784, 256, 2047)
	var packed Packed
	PackB(&packed, p.bsrc, p.k, p.n, p.n)
	k := Best()
	for _, g := range []int{1, 2, 1, 2} {
		var wg sync.WaitGroup
		start := time.Now()
		const iters = 2000
		for range g {
			c := make([]int32, (p.m-1)*p.ldc+p.n)
			wg.Go(func() {
				for range iters {
					k.Gemm(c, p.ldc, p.a, p.lda, &packed, p.m)
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		t.Logf("goroutines %d: %v per gemm per goroutine, aggregate %d MMAC/s", g, el/iters, int64(g)*iters*64*784*256*1000/el.Nanoseconds())
	}
}
