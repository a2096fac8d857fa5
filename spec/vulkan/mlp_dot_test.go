package vulkan_test

import (
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/spectest"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// TestIntegerDotPaths: the conformance vectors (their first 10 steps) and
// random specs, trained once with the products on plain int32
// multiply-adds (WithIntegerDot(false)) and once on the packed 4×8-bit
// integer dot products (WithIntegerDot(true), where the device has
// VK_KHR_shader_integer_dot_product, as lavapipe does), give the same
// loss and state digest after every step; the dot path really ran. By
// default the dot path runs only where the device calls it accelerated.
func TestIntegerDotPaths(t *testing.T) {
	t.Parallel()
	info := device(t).Info()
	t.Logf("%v: integer dot product %v, accelerated %v", info, info.IntegerDotProduct, info.IntegerDotAccelerated)
	{
		s := spectest.Random(rand.New(rand.NewPCG(14, 10)), 8, 4)
		tr, err := vulkan.New(s, s.Init(), vulkan.WithDevice(device(t)))
		if err != nil {
			t.Fatal(err)
		}
		def := tr.IntegerDot()
		tr.Close()
		if _, set := os.LookupEnv("BELUGA_VULKAN_DOT"); !set && def != info.IntegerDotAccelerated {
			t.Fatalf("by default the dot path ran: %v; the device calls it accelerated: %v", def, info.IntegerDotAccelerated)
		}
	}
	off, err := vulkan.Open(vulkan.WithIntegerDot(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.Close() })
	if !info.IntegerDotProduct {
		if _, err := vulkan.Open(vulkan.WithIntegerDot(true)); err == nil {
			t.Fatalf("%v lacks the integer dot product, but WithIntegerDot(true) opened it", info)
		}
		t.Skipf("%v has no integer dot product: the int32 path only", info)
	}
	on, err := vulkan.Open(vulkan.WithIntegerDot(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { on.Close() })
	var specs []*spec.Spec
	forEachVector(t, "vectors", func(t *testing.T, _ string, s *spec.Spec, _ []record) {
		s.Steps = min(s.Steps, 10)
		ds, _, err := catalog.LoadData(s, "")
		if err != nil {
			t.Fatal(err)
		}
		sameOnBothPaths(t, off, on, s, ds)
	})
	r := rand.New(rand.NewPCG(14, 9))
	for range 12 {
		specs = append(specs, spectest.Random(r, 40, 37))
	}
	specs = append(specs, spectest.Random(r, 150, 300))
	specs = append(specs, fullRangeSpecs(r, 8)...)
	for i, s := range specs {
		t.Run("random"+strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			sameOnBothPaths(t, off, on, s, syntheticData(t, s))
		})
	}
}

// sameOnBothPaths trains s on off's int32 path and on's dot path, step by
// step, and fails on the first step whose loss or digest differ.
func sameOnBothPaths(t *testing.T, off, on *vulkan.Device, s *spec.Spec, ds *dataset.Dataset) {
	t.Helper()
	var trs [2]*vulkan.Trainer
	for i, d := range []*vulkan.Device{off, on} {
		tr, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d), vulkan.WithData(ds))
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if tr.IntegerDot() != (i == 1) {
			t.Fatalf("trainer %d: IntegerDot %v", i, tr.IntegerDot())
		}
		trs[i] = tr
	}
	id, _ := s.ID()
	var h commit.Hasher
	sm := s.NewSampler()
	idx := make([]int, s.BatchSize)
	for step := range s.Steps {
		sm.Batch(step, idx)
		var got [2]record
		for i, tr := range trs {
			loss, err := tr.StepIndices(idx)
			if err != nil {
				t.Fatal(err)
			}
			dg := h.StateDigest(id, tr.State())
			got[i] = record{loss, hex.EncodeToString(dg[:])}
		}
		if got[0] != got[1] {
			t.Fatalf("%s (layers %+v, batch %d): step %d: int32 path loss %d digest %.12s, dot path loss %d digest %.12s",
				s.Name, s.Model.Layers, s.BatchSize, step, got[0].loss, got[0].digest, got[1].loss, got[1].digest)
		}
	}
}

// fullRangeSpecs draws n valid specs whose gradients have 15 bits (the
// loss gradient reaches −32767: the high byte −128), and whose activations
// and weights have 13–15, so the dot path's byte split runs on operands
// up to the int16 range that spectest.Random (≤ 12 bits) leaves out.
func fullRangeSpecs(r *rand.Rand, n int) []*spec.Spec {
	var out []*spec.Spec
	for len(out) < n {
		s := spectest.Random(r, 6, 8)
		s.Numeric.GradBits = 15
		s.Numeric.ActBits, s.Numeric.ActFrac = 13+r.IntN(3), r.IntN(6)
		s.Numeric.WeightBits, s.Numeric.WeightFrac = 13+r.IntN(3), 10+r.IntN(5)
		s.Numeric.MasterFrac = s.Numeric.WeightFrac + 8 + r.IntN(6)
		if s.Validate() == nil {
			out = append(out, s)
		}
	}
	return out
}
