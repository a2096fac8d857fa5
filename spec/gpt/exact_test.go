package gpt

import (
	"fmt"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestStepsIdenticalAcrossKernelsAndThreads: three steps of a small GPT
// give the same state bit for bit on the pure-Go kernel with one thread
// and on the best kernel with 1 and 3 threads.
func TestStepsIdenticalAcrossKernelsAndThreads(t *testing.T) {
	t.Parallel()
	c := Config{Context: 16, Dim: 32, Layers: 2, Heads: 4, FF: 64, Bits: 12, Batch: 3, Seed: 11,
		Beta1: Ratio{58982, 16}, Beta2: Ratio{62259, 16}, WeightDecay: Ratio{6554, 16}, Eps: 1,
		LRShift: 39, LR: []LRPoint{{0, 549755814}}}
	run := func(k kernel.Kernel, threads int) (*State, []StepResult) {
		tr, err := NewTrainer(c, k, threads)
		if err != nil {
			t.Fatal(err)
		}
		st := c.Init()
		var rs []StepResult
		for s := range 3 {
			r, err := tr.Step(st, randomBatch(c, uint64(s)))
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		return st, rs
	}
	want, wantR := run(kernel.Generic(), 1)
	for _, v := range []struct {
		k       kernel.Kernel
		threads int
	}{{kernel.Best(), 1}, {kernel.Best(), 3}, {kernel.Generic(), 2}} {
		name := fmt.Sprintf("%s/%d", v.k.Name(), v.threads)
		got, gotR := run(v.k, v.threads)
		if !slices.Equal(gotR, wantR) {
			t.Errorf("%s: step results %v, want %v", name, gotR, wantR)
		}
		for p := range want.W {
			if !slices.Equal(got.W[p], want.W[p]) || !slices.Equal(got.M[p], want.M[p]) || !slices.Equal(got.V[p], want.V[p]) {
				t.Errorf("%s: parameter %d differs", name, p)
			}
		}
	}
}
