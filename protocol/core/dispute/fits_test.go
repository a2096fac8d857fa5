package dispute

import (
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/ref"
)

// TestMaxOpeningBoundsMarshal: the bound is MarshalTensor's size for a
// tensor whose values sit at the ends of its range, and not below it.
func TestMaxOpeningBoundsMarshal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		shape  []int
		lo, hi int64
	}{{[]int{3, 5}, -4095, 4095}, {[]int{2, 2, 2, 2}, 0, 1 << 46}, {[]int{7}, -(1 << 62), 1 << 62}, {[]int{1}, 0, 0}} {
		n := 1
		for _, d := range c.shape {
			n *= d
		}
		data := make([]int64, n)
		worst := c.lo // the end of the range with the longer encoding
		if varintLen(c.hi) > varintLen(c.lo) {
			worst = c.hi
		}
		for i := range data {
			data[i] = worst
		}
		b, err := MarshalTensor(ref.Tensor{Shape: c.shape, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		got := tensorOpeningBytes(c.shape, max(varintLen(c.lo), varintLen(c.hi)))
		if got != int64(len(b)) {
			t.Fatalf("shape %v in [%d, %d]: bound %d, encoding %d bytes", c.shape, c.lo, c.hi, got, len(b))
		}
	}
}

// TestExamplesFit: the example jobs can be disputed over the wire's 64 MiB
// answers; a GPT too wide for it is refused, naming the tensor.
func TestExamplesFit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 20
	fashion, err := catalog.Example("fashion-mnist")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*spec.Spec{spec.ExampleGPT(), fashion} {
		o, err := MaxOpening(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: largest tensor %s %d bytes, batch %d bytes", s.Name, o.Tensor, o.TensorBytes, o.BatchBytes)
		if err := CheckFits(s, limit); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
	}
	wide := spec.ExampleGPT()
	wide.Model.Layers[0].Dim = 1024
	for i := 1; i < len(wide.Model.Layers)-2; i++ {
		wide.Model.Layers[i].Heads, wide.Model.Layers[i].FF = 8, 4096
	}
	if err := wide.Validate(); err != nil {
		t.Fatalf("the wide GPT is a valid spec: %v", err)
	}
	err = CheckFits(wide, limit)
	if err == nil || !strings.Contains(err.Error(), "could not be settled") {
		t.Fatalf("a GPT of width 1024 fits 64 MiB answers? %v", err)
	}
	t.Log(err)
	big := spec.ExampleGPT()
	big.BatchSize, big.Model.Layers[0].Context = 8192, 8
	if err := big.Validate(); err != nil {
		t.Fatalf("8192 windows of 8 bytes are a valid spec: %v", err)
	}
	if o, err := MaxOpening(big); err != nil || o.BatchBytes <= limit {
		t.Fatalf("8192 windows with their chunks and proofs fit 64 MiB? %+v %v", o, err)
	}
}
