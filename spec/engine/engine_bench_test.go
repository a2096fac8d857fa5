package engine

import (
	"fmt"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// mlpSpec is the reference MLP 784-256-128-10 at the given batch size.
func mlpSpec(batch int) *spec.Spec {
	return &spec.Spec{
		Version: 1, Name: "bench",
		Model:   spec.Model{Layers: []spec.Layer{{Op: "linear", Out: 256}, {Op: "relu"}, {Op: "linear", Out: 128}, {Op: "relu"}, {Op: "linear", Out: 10}}, Loss: spec.LossSoftmaxCrossEntropy},
		Numeric: spec.Numeric{ActBits: 10, ActFrac: 8, WeightBits: 11, WeightFrac: 10, MasterFrac: 26, GradBits: 11, LogitBits: 15, LogitFrac: 10},
		Optimizer: spec.Optimizer{Kind: spec.OptimizerSGDMomentum, Momentum: spec.Ratio{Num: 29491, Shift: 15}, LRShift: 30,
			LR: []spec.LRPoint{{Step: 0, Value: 838860}}},
		Data: spec.Data{Source: spec.SourceSynthetic, Synthetic: &spec.SyntheticData{Seed: 1, Train: 4096}, Train: spec.DatasetRef{Root: fmt.Sprintf("%064x", 0), Count: 4096, Features: 784, Classes: 10}},
		Seed: 1, Steps: 1 << 30, BatchSize: batch, CheckpointInterval: 1 << 30, DigestInterval: 1,
		Audit: spec.Audit{CheatFractionPPM: 1, ConfidencePPM: 1},
	}
}

func BenchmarkStep(b *testing.B) {
	ds, err := dataset.Synthetic(1, 4096, 784, 10)
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{64, 256, 1024} {
		s := mlpSpec(batch)
		if err := s.Validate(); err != nil {
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
