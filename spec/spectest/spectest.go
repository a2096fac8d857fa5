// Package spectest builds job specs for tests and benchmarks: the
// reference MLP at any batch size, and random small specs whose formats
// range widely so that every clamp and saturation of SPEC.md §8 fires.
package spectest

import (
	"math/rand/v2"
	"strings"

	"github.com/beluga-compute/beluga/spec"
)

// DefaultNumeric is the integer format of the built-in examples.
var DefaultNumeric = spec.Numeric{ActBits: 10, ActFrac: 8, WeightBits: 11, WeightFrac: 10, MasterFrac: 26, GradBits: 11, LogitBits: 15, LogitFrac: 10}

// MLP returns the reference model, MLP 784-256-128-10 with softmax
// cross-entropy and SGD with momentum, at the given batch size, on a
// synthetic training set of 8,192 samples. Its dataset root is a
// placeholder: the spec is for timing and semantics, not for LoadData. It
// runs spec.MaxSteps steps and commits a digest only at the first and the
// last (the most steps, the fewest digests).
func MLP(batch int) (*spec.Spec, error) {
	s := &spec.Spec{
		Version: spec.Version, Name: "mlp-784-256-128-10",
		Model: spec.Model{Layers: []spec.Layer{{Op: spec.OpLinear, Out: 256}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 128}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 10}},
			Loss: spec.LossSoftmaxCrossEntropy},
		Numeric: DefaultNumeric,
		Optimizer: spec.Optimizer{Kind: spec.OptimizerSGDMomentum, Momentum: spec.Ratio{Num: 29491, Shift: 15}, LRShift: 30,
			LR: []spec.LRPoint{{Step: 0, Value: (1 << 30) / 20 / int64(batch)}}},
		Data: spec.Data{Source: spec.SourceSynthetic, Synthetic: &spec.SyntheticData{Seed: 1, Train: 8192},
			Train: spec.DatasetRef{Root: strings.Repeat("0", 64), Count: 8192, Features: 784, Classes: 10}},
		Seed: 1, Steps: spec.MaxSteps, BatchSize: batch, CheckpointInterval: spec.MaxSteps, DigestInterval: spec.MaxSteps,
		Audit: spec.Audit{CheatFractionPPM: 10_000, ConfidencePPM: 990_000},
	}
	return s, s.Validate()
}

// Random draws a valid spec of at most maxWidth features and layer
// widths, batch at most maxBatch, 3–7 steps, synthetic data of 50–99
// samples (its root is a placeholder), random formats and rates.
func Random(r *rand.Rand, maxWidth, maxBatch int) *spec.Spec {
	for {
		features, classes := 1+r.IntN(maxWidth), 2+r.IntN(9)
		var layers []spec.Layer
		for range r.IntN(3) {
			layers = append(layers, spec.Layer{Op: spec.OpLinear, Out: 1 + r.IntN(maxWidth)})
			if r.IntN(4) > 0 {
				layers = append(layers, spec.Layer{Op: spec.OpReLU})
			}
		}
		layers = append(layers, spec.Layer{Op: spec.OpLinear, Out: classes})
		n := spec.Numeric{
			ActBits: 4 + r.IntN(9), ActFrac: r.IntN(12), WeightBits: 4 + r.IntN(9), WeightFrac: r.IntN(12),
			GradBits: 3 + r.IntN(10), LogitBits: 6 + r.IntN(10), LogitFrac: r.IntN(12),
		}
		n.MasterFrac = max(8, n.ActFrac) + n.WeightFrac + r.IntN(10)
		steps := int64(3 + r.IntN(5))
		s := &spec.Spec{
			Version: spec.Version, Name: "random",
			Model:   spec.Model{Layers: layers, Loss: spec.LossSoftmaxCrossEntropy},
			Numeric: n,
			Optimizer: spec.Optimizer{Kind: spec.OptimizerSGDMomentum, Momentum: spec.Ratio{Num: r.Int64N(1 << 15), Shift: 15},
				LRShift: 20 + r.IntN(20), LR: []spec.LRPoint{{Step: 0, Value: r.Int64N(1 << 31)}, {Step: 2 + r.Int64N(5), Value: r.Int64N(1 << 31)}}},
			Data: spec.Data{Source: spec.SourceSynthetic, Synthetic: &spec.SyntheticData{Seed: r.Uint64(), Train: 50 + r.IntN(50)},
				Train: spec.DatasetRef{Root: strings.Repeat("0", 64), Features: features, Classes: classes}},
			Seed: r.Uint64(), Steps: steps, BatchSize: 1 + r.IntN(maxBatch), CheckpointInterval: steps, DigestInterval: 1,
			Audit: spec.Audit{CheatFractionPPM: 1, ConfidencePPM: 1},
		}
		s.Data.Train.Count = s.Data.Synthetic.Train
		if s.Validate() == nil {
			return s
		}
	}
}
