package ref

import (
	"slices"
	"sync"
	"testing"

	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/conformance"
)

// TestSaturatingVectorFiresEveryClamp: the `saturating` vector (SPEC.md
// §16) drives the reference step into every clamp and saturation of §8
// that can fire — layer outputs, loss and back-propagated gradients,
// Scale, the momentum's Sat32 and the master-weight clamp — and `tiny`
// into none. (The quantised-weight clamp of §8.3 cannot fire: the master
// clamp keeps |w| ≤ M = W·2^(master_frac − weight_frac), so
// |RoundShift(w, master_frac − weight_frac)| ≤ W already.)
func TestSaturatingVectorFiresEveryClamp(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	saturated = func(site string) {
		mu.Lock()
		hits[site]++
		mu.Unlock()
	}
	t.Cleanup(func() { saturated = nil })
	all := []string{siteForward, siteLossGrad, siteBackward, siteScale, siteMomentum, siteMaster}
	for _, name := range []string{"saturating", "tiny"} {
		clear(hits)
		v, err := conformance.Load("../testdata/vectors/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := v.Spec
		ds := v.Samples
		if ds == nil {
			if ds, _, err = catalog.LoadData(s, ""); err != nil {
				t.Fatal(err)
			}
		}
		st := s.Init()
		idx := make([]int, s.BatchSize)
		for step := range s.Steps {
			s.NewSampler().Batch(step, idx)
			x, y := make([][]uint8, len(idx)), make([]uint8, len(idx))
			for b, i := range idx {
				x[b], y[b] = ds.Sample(i)
			}
			if _, err := Step(s, st, step, x, y); err != nil {
				t.Fatal(err)
			}
		}
		var fired []string
		for _, site := range all {
			if hits[site] > 0 {
				fired = append(fired, site)
			}
		}
		t.Logf("%s: %v", name, hits)
		if name == "saturating" && !slices.Equal(fired, all) {
			t.Errorf("saturating fires %v of %v", fired, all)
		}
		if name == "tiny" && len(fired) > 0 {
			t.Errorf("tiny fires %v", fired)
		}
		if hits[siteQuantize] > 0 {
			t.Errorf("%s: the quantised-weight clamp fired, which §8.3 says cannot happen", name)
		}
	}
}
