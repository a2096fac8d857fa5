//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// TestTiles: both compiled tile sizes (64 and the 128 that large products
// get), with and without the split of the batch sum, give the CPU
// engine's digest after every step on random specs — partial tiles
// everywhere, since the specs are smaller than a tile.
func TestTiles(t *testing.T) {
	t.Parallel()
	d, err := Open()
	if errors.Is(err, ErrNoDevice) {
		t.Skipf("no Vulkan device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := rand.New(rand.NewPCG(14, 7))
	var h commit.Hasher
	split := false
	for i := range 4 {
		s := spectest.Random(r, 100, 520) // batches past 256: the batch sum split too
		ds, err := dataset.Synthetic(s.Data.Synthetic.Seed, s.Data.Train.Count, s.Data.Train.Features, s.Data.Train.Classes)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := s.ID()
		e, err := engine.New(s, s.Init(), engine.WithKernel(kernel.Generic()), engine.WithThreads(1))
		if err != nil {
			t.Fatal(err)
		}
		var trs []*Trainer
		for _, tile := range []uint32{64, 128} {
			tr, err := New(s, s.Init(), WithDevice(d), withTile(tile))
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			trs = append(trs, tr)
		}
		for j := range trs[0].layers {
			split = split || trs[0].dwPlan(j).splits > 1
		}
		b := engine.NewBatcher(s, ds)
		for step := range s.Steps {
			x, y := b.Batch(step)
			want, err := e.Step(x, y)
			if err != nil {
				t.Fatal(err)
			}
			wd := h.StateDigest(id, e.State())
			for k, tr := range trs {
				got, err := tr.Step(x, y)
				if err != nil {
					t.Fatal(err)
				}
				if gd := h.StateDigest(id, tr.State()); gd != wd || got != want {
					t.Fatalf("spec %d, step %d, tile %d: loss %d digest %x, engine %d %x", i, step, trs[k].tile, got, gd[:6], want, wd[:6])
				}
			}
		}
	}
	if !split {
		t.Fatal("no spec split its batch sum: the test misses the atomicAdd path")
	}
}

// TestPlanGemm: large products get 128-wide tiles, small ones 64; the
// weight gradient's batch sum is split into chunks of whole 16-term steps
// that cover it exactly once.
func TestPlanGemm(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		M, N, K  uint32
		split    bool
		wantTile uint32
	}{
		{8192, 256, 784, false, 128}, {64, 256, 784, false, 64}, {8192, 10, 128, false, 64},
		{256, 784, 8192, true, 128}, {256, 784, 64, true, 64}, {128, 256, 1024, true, 64},
	} {
		g := planGemm(c.M, c.N, c.K, c.split, 0)
		if g.tile != c.wantTile {
			t.Errorf("%d×%d×%d: tile %d, want %d", c.M, c.N, c.K, g.tile, c.wantTile)
		}
		if g.chunk%16 != 0 && g.splits > 1 || (g.splits-1)*g.chunk >= c.K || g.splits*g.chunk < c.K {
			t.Errorf("%d×%d×%d: %d chunks of %d do not cover K once", c.M, c.N, c.K, g.splits, g.chunk)
		}
		if !c.split && g.splits != 1 {
			t.Errorf("%d×%d×%d: split %d without leave", c.M, c.N, c.K, g.splits)
		}
	}
}
