package model

import (
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
)

// mlpRunner is spec/engine behind the Runner interface: the same steps,
// hence the same digests, as the engine alone.
type mlpRunner struct {
	s     *spec.Spec
	eng   *engine.Engine
	batch *engine.Batcher
	test  *dataset.Dataset
}

func newMLPRunner(s *spec.Spec, d *Data, st *spec.State, o options) (*mlpRunner, error) {
	eng, err := engine.New(s, st, engine.WithKernel(o.kernel), engine.WithThreads(o.threads))
	if err != nil {
		return nil, err
	}
	return &mlpRunner{s: s, eng: eng, batch: engine.NewBatcher(s, d.Train), test: d.Test}, nil
}

func (r *mlpRunner) State() *spec.State { return r.eng.State() }

func (r *mlpRunner) Step() (int64, error) {
	loss, err := r.eng.Step(r.batch.Batch(r.eng.State().Step))
	if err != nil {
		return 0, err
	}
	return loss / int64(r.s.BatchSize), nil
}

func (r *mlpRunner) Eval() (Eval, error) { return testAccuracy(r.test, r.eng.Predict) }

// testAccuracy counts the samples of test (none: nil) that predict, an
// engine's Predict, classifies as labelled.
func testAccuracy(test *dataset.Dataset, predict func([][]uint8, []int) error) (Eval, error) {
	var ev Eval
	if test == nil {
		return ev, nil
	}
	xs := make([][]uint8, test.Len())
	for i := range xs {
		xs[i], _ = test.Sample(i)
	}
	pred := make([]int, len(xs))
	if err := predict(xs, pred); err != nil {
		return ev, err
	}
	for i, p := range pred {
		if _, label := test.Sample(i); p == int(label) {
			ev.TestCorrect++
		}
	}
	ev.TestTotal = len(xs)
	return ev, nil
}
