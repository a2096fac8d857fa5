package spec

import "github.com/beluga-compute/beluga/spec/prng"

// Sampler yields the sample indices of each step (SPEC.md §"Batch order"):
// the training set is visited in epochs, each a Fisher–Yates permutation
// drawn from Derive(seed, "batch.order", epoch, 0); step t takes the
// samples at global positions t·B … t·B+B-1 of the concatenated epochs.
type Sampler struct {
	seed  uint64
	n     int64
	batch int64
	epoch int64
	perm  []uint32
}

// NewSampler returns the sampler of s over its training set.
func (s *Spec) NewSampler() *Sampler {
	return &Sampler{seed: s.Seed, n: int64(s.Data.Train.Count), batch: int64(s.BatchSize), epoch: -1}
}

// Batch fills dst[:B] with the training-set indices of step t.
func (sm *Sampler) Batch(t int64, dst []int) {
	for k := range sm.batch {
		g := t*sm.batch + k
		if e := g / sm.n; e != sm.epoch {
			if sm.perm == nil {
				sm.perm = make([]uint32, sm.n)
			}
			prng.Derive(sm.seed, "batch.order", uint64(e), 0).Permutation(sm.perm)
			sm.epoch = e
		}
		dst[k] = int(sm.perm[g%sm.n])
	}
}
