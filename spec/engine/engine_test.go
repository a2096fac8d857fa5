package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/ref"
	"github.com/beluga-compute/beluga/spec/spectest"
)

func kernels(t *testing.T) []kernel.Kernel {
	ks := []kernel.Kernel{kernel.Generic()}
	if b := kernel.Best(); b.Name() != kernel.Generic().Name() {
		ks = append(ks, b)
	} else {
		t.Logf("no SIMD kernel on this CPU/build: comparing the pure-Go kernel only")
	}
	return ks
}

// TestMatchesReference runs random specs with the reference and with the
// engine under every kernel and thread count, comparing the loss and the
// state digest after every step.
func TestMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	iters := 40
	if testing.Short() {
		iters = 8
	}
	for it := range iters {
		s := spectest.Random(r, 40, 37)
		ds, err := dataset.Synthetic(s.Data.Synthetic.Seed, s.Data.Train.Count, s.Data.Train.Features, s.Data.Train.Classes)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := s.ID()
		var h commit.Hasher
		want := s.Init()
		engines := map[string]*Engine{}
		for _, k := range kernels(t) {
			for _, threads := range []int{1, 2, 3} {
				e, err := New(s, s.Init(), WithKernel(k), WithThreads(threads))
				if err != nil {
					t.Fatal(err)
				}
				engines[fmt.Sprintf("%s/%d", k.Name(), threads)] = e
			}
			// Every loop split across 3 goroutines, however small.
			e, err := New(s, s.Init(), WithKernel(k), WithThreads(3), func(c *config) { c.minShare = 1 })
			if err != nil {
				t.Fatal(err)
			}
			engines[k.Name()+"/3/split"] = e
		}
		sm := s.NewSampler()
		idx := make([]int, s.BatchSize)
		x := make([][]uint8, s.BatchSize)
		y := make([]uint8, s.BatchSize)
		for step := range s.Steps {
			sm.Batch(step, idx)
			for b, i := range idx {
				x[b], y[b] = ds.Sample(i)
			}
			wantLoss, err := ref.Step(s, want, step, x, y)
			if err != nil {
				t.Fatal(err)
			}
			wantDigest := h.StateDigest(id, want)
			for name, e := range engines {
				loss, err := e.Step(x, y)
				if err != nil {
					t.Fatal(err)
				}
				if got := h.StateDigest(id, e.State()); got != wantDigest || loss != wantLoss {
					t.Fatalf("iteration %d (%+v, batch %d), step %d, %s: digest %x loss %d, reference %x loss %d",
						it, s.Model.Layers, s.BatchSize, step, name, got[:6], loss, wantDigest[:6], wantLoss)
				}
			}
		}
		xs := make([][]uint8, ds.Len())
		for i := range xs {
			xs[i], _ = ds.Sample(i)
		}
		wantPred := ref.Predict(s, want, xs)
		for name, e := range engines {
			got := make([]int, len(xs))
			if err := e.Predict(xs, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i] != wantPred[i] {
					t.Fatalf("iteration %d, %s: prediction %d is %d, reference %d", it, name, i, got[i], wantPred[i])
				}
			}
		}
	}
}
