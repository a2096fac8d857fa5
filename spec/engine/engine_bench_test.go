package engine

import (
	"fmt"
	"testing"

	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/spectest"
)

func BenchmarkStep(b *testing.B) {
	ds, err := dataset.Synthetic(1, 8192, 784, 10) // the 8,192 samples spectest.MLP names
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{64, 256, 1024} {
		s, err := spectest.MLP(batch)
		if err != nil {
			b.Fatal(err)
		}
		macs := int64(0)
		for _, l := range s.Plan().Linear {
			macs += 2 * int64(l.In*l.Out*batch) // forward + weight gradient
			if !l.First {
				macs += int64(l.In * l.Out * batch) // input gradient
			}
		}
		for _, k := range []kernel.Kernel{kernel.Generic(), kernel.Best()} {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("batch=%d/%s/threads=%d", batch, k.Name(), threads), func(b *testing.B) {
					e, err := New(s, s.Init(), WithKernel(k), WithThreads(threads))
					if err != nil {
						b.Fatal(err)
					}
					sm := s.NewSampler()
					idx := make([]int, batch)
					x := make([][]uint8, batch)
					y := make([]uint8, batch)
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						sm.Batch(int64(i), idx)
						for j, n := range idx {
							x[j], y[j] = ds.Sample(n)
						}
						if _, err := e.Step(x, y); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(macs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
				})
			}
		}
	}
}
