package kernel

import (
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestZZProbe3(t *testing.T) {
	for _, s := range [][3]int{{64, 784, 256}, {1024, 256, 128}, {1024, 784, 256}} {
		rng := rand.New(rand.NewPCG(1, 2))
		p := newProblem(rng, s[0], s[1], s[2], 2047)
		var packed Packed
		PackB(&packed, p.bsrc, p.k, p.n, p.n)
		c := make([]int32, (p.m-1)*p.ldc+p.n)
		for _, k := range []Kernel{Best(), Parallel(Best(), 2), Best(), Parallel(Best(), 2)} {
			var ds []time.Duration
			for range 300 {
				st := time.Now()
				k.Gemm(c, p.ldc, p.a, p.lda, &packed, p.m)
				ds = append(ds, time.Since(st))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			t.Logf("%v %s: min %v p10 %v median %v p90 %v", s, k.Name(), ds[0], ds[30], ds[150], ds[270])
		}
	}
	// wake latency
	var ds []time.Duration
	for range 200 {
		var wg sync.WaitGroup
		st := time.Now()
		var d time.Duration
		wg.Go(func() { d = time.Since(st) })
		// busy on this goroutine for 50us
		for time.Since(st) < 50*time.Microsecond {
		}
		wg.Wait()
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("wake: min %v p10 %v median %v p90 %v", ds[0], ds[20], ds[100], ds[180])
}
