// Package catalog holds the built-in example jobs and finds the bytes of
// the datasets a spec names, checking them against the spec's commitments
// before any training starts.
package catalog

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// Example names accepted by Example.
const (
	ExampleSynthetic    = spec.SourceSynthetic
	ExampleFashionMNIST = spec.SourceFashionMNIST
)

// Commitments of Fashion-MNIST as Debian's dataset-fashion-mnist ships it
// (TestFashionMNISTRoots recomputes them when the files are installed).
var (
	FashionMNISTTrain = spec.DatasetRef{Root: fashionTrainRoot, Count: 60000, Features: 784, Classes: 10}
	FashionMNISTTest  = spec.DatasetRef{Root: fashionTestRoot, Count: 10000, Features: 784, Classes: 10}
)

const (
	fashionTrainRoot = "6046e4295b3ef6d101960b86c6284d46e3da67e2796a7bbcf3998f2adeb7d25e"
	fashionTestRoot  = "aea149edca00a54af4a6f8a3c2d21b3e6d694d5e3677589545e34c9f80e13362"
)

// Synthetic example parameters: small enough to train in about a second.
const (
	syntheticSeed     = 7
	syntheticTrain    = 16384
	syntheticTest     = 4096
	syntheticFeatures = 256
	syntheticClasses  = 10
)

// ErrDataMismatch: the bytes found do not match the spec's commitment.
var ErrDataMismatch = errors.New("catalog: dataset does not match the spec's commitment")

// numeric is the default integer format (SPEC.md §10 shows its bounds).
var numeric = spec.Numeric{ActBits: 10, ActFrac: 8, WeightBits: 11, WeightFrac: 10, MasterFrac: 26, GradBits: 11, LogitBits: 15, LogitFrac: 10}

// Example returns a ready-to-run spec: "synthetic" (generated data, no
// download, trains in seconds) or "fashion-mnist" (the MLP 784-256-128-10,
// batch 64, three epochs).
func Example(name string) (*spec.Spec, error) {
	s := &spec.Spec{
		Version: spec.Version,
		Model: spec.Model{
			Loss: spec.LossSoftmaxCrossEntropy,
		},
		Numeric: numeric,
		Seed:    1,
		// μ = 0.9; learning rate 0.05 per mean gradient at batch 64.
		Optimizer: spec.Optimizer{
			Kind:     spec.OptimizerSGDMomentum,
			Momentum: spec.Ratio{Num: 29491, Shift: 15},
			LRShift:  30,
		},
		BatchSize:      64,
		DigestInterval: 1,
		Audit:          spec.Audit{CheatFractionPPM: 10_000, ConfidencePPM: 990_000},
	}
	switch name {
	case ExampleSynthetic:
		train, test, err := dataset.SyntheticSplit(syntheticSeed, syntheticTrain, syntheticTest, syntheticFeatures, syntheticClasses)
		if err != nil {
			return nil, err
		}
		s.Name = "synthetic-mlp"
		s.Data = spec.Data{
			Source:    spec.SourceSynthetic,
			Synthetic: &spec.SyntheticData{Seed: syntheticSeed, Train: syntheticTrain, Test: syntheticTest},
			Train:     Ref(train),
		}
		testRef := Ref(test)
		s.Data.Test = &testRef
		s.Model.Layers = []spec.Layer{{Op: spec.OpLinear, Out: 128}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 64}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: syntheticClasses}}
		s.Steps = 600
		s.CheckpointInterval = 200
	case ExampleFashionMNIST:
		s.Name = "fashion-mnist-mlp"
		test := FashionMNISTTest
		s.Data = spec.Data{Source: spec.SourceFashionMNIST, Train: FashionMNISTTrain, Test: &test}
		s.Model.Layers = []spec.Layer{{Op: spec.OpLinear, Out: 256}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 128}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 10}}
		s.Steps = 3 * 60000 / 64
		s.CheckpointInterval = 500
	default:
		return nil, fmt.Errorf("catalog: no example %q (have %q and %q)", name, ExampleSynthetic, ExampleFashionMNIST)
	}
	// Learning rate 0.05 per mean gradient, decaying linearly to a twentieth.
	lr := int64(1) << s.Optimizer.LRShift / 20 / int64(s.BatchSize)
	s.Optimizer.LR = []spec.LRPoint{{Step: 0, Value: lr}, {Step: s.Steps, Value: lr / 20}}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("catalog: example %q: %w", name, err)
	}
	return s, nil
}

// Ref returns the spec reference of ds: its commitment and sizes.
func Ref(ds *dataset.Dataset) spec.DatasetRef {
	c := dataset.Commit(ds)
	return spec.DatasetRef{Root: hex.EncodeToString(c.Root[:]), Count: c.Count, Features: c.Features, Classes: c.Classes}
}

// LoadData returns the training and (if the spec has one) test sets of s.
// dir overrides where IDX files are read from (default: Debian's
// fashion-mnist directory); it is unused for synthetic data. Each set is
// checked against the spec's commitment.
func LoadData(s *spec.Spec, dir string) (train, test *dataset.Dataset, err error) {
	switch s.Data.Source {
	case spec.SourceSynthetic:
		sd := s.Data.Synthetic
		f, c := s.Data.Train.Features, s.Data.Train.Classes
		if sd.Test > 0 {
			train, test, err = dataset.SyntheticSplit(sd.Seed, sd.Train, sd.Test, f, c)
		} else {
			train, err = dataset.Synthetic(sd.Seed, sd.Train, f, c)
		}
	case spec.SourceFashionMNIST, spec.SourceIDX:
		// The files are Fashion-MNIST's: a spec of another shape cannot
		// match them, and is refused before anything is read.
		if err := fashionShaped(s); err != nil {
			return nil, nil, err
		}
		if dir == "" {
			dir = dataset.DefaultFashionMNISTDir
		}
		train, test, err = dataset.LoadFashionMNIST(dir)
		if s.Data.Test == nil {
			test = nil
		}
	default:
		return nil, nil, fmt.Errorf("catalog: data source %q", s.Data.Source)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load %s data: %w", s.Data.Source, err)
	}
	if err := check("train", train, s.Data.Train); err != nil {
		return nil, nil, err
	}
	if s.Data.Test != nil {
		if err := check("test", test, *s.Data.Test); err != nil {
			return nil, nil, err
		}
	}
	return train, test, nil
}

// fashionShaped reports whether the splits of s have Fashion-MNIST's
// sample counts, features and classes, the shape of the IDX files LoadData
// reads.
func fashionShaped(s *spec.Spec) error {
	shape := func(r spec.DatasetRef) [3]int { return [3]int{r.Count, r.Features, r.Classes} }
	if shape(s.Data.Train) != shape(FashionMNISTTrain) || s.Data.Test != nil && shape(*s.Data.Test) != shape(FashionMNISTTest) {
		return fmt.Errorf("%w: %s data is read from Fashion-MNIST's IDX files (%d and %d samples of %d features, %d classes); the spec wants another shape",
			ErrDataMismatch, s.Data.Source, FashionMNISTTrain.Count, FashionMNISTTest.Count, FashionMNISTTrain.Features, FashionMNISTTrain.Classes)
	}
	return nil
}

func check(split string, ds *dataset.Dataset, want spec.DatasetRef) error {
	if ds == nil {
		return fmt.Errorf("%w: no %s split found", ErrDataMismatch, split)
	}
	if got := Ref(ds); got != want {
		return fmt.Errorf("%w: %s split has root %s, %d samples, %d features, %d classes; the spec wants %s, %d, %d, %d",
			ErrDataMismatch, split, got.Root, got.Count, got.Features, got.Classes, want.Root, want.Count, want.Features, want.Classes)
	}
	return nil
}
