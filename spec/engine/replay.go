package engine

import (
	"context"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// Batcher gathers the spec's batch for a step: the sample indices the
// sampler draws (SPEC.md's batch order) and their inputs and labels. It
// reuses its buffers: a batch is valid until the next call.
type Batcher struct {
	train *dataset.Dataset
	sm    *spec.Sampler
	Idx   []int
	X     [][]uint8
	Y     []uint8
}

// NewBatcher returns the batcher of s's batches over train.
func NewBatcher(s *spec.Spec, train *dataset.Dataset) *Batcher {
	return &Batcher{
		train: train,
		sm:    s.NewSampler(),
		Idx:   make([]int, s.BatchSize),
		X:     make([][]uint8, s.BatchSize),
		Y:     make([]uint8, s.BatchSize),
	}
}

// Batch fills the batcher with step t's batch and returns its inputs and
// labels.
func (b *Batcher) Batch(t int64) ([][]uint8, []uint8) {
	b.sm.Batch(t, b.Idx)
	for i, j := range b.Idx {
		b.X[i], b.Y[i] = b.train.Sample(j)
	}
	return b.X, b.Y
}

// Replay runs e's state forward to step `to` with the spec's batches over
// train. It is how every party that is not the solver — a verifier, the
// prover, the referee — recomputes a step: the same code the solver runs.
func (e *Engine) Replay(ctx context.Context, train *dataset.Dataset, to int64) error {
	b := NewBatcher(e.s, train)
	for e.st.Step < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		x, y := b.Batch(e.st.Step)
		if _, err := e.Step(x, y); err != nil {
			return err
		}
	}
	return nil
}
