package service

import (
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

// TestComputeUnitsGPT: a GPT is priced by its products' MACs and its
// corpus, not as the 1 CU of an empty MLP plan.
func TestComputeUnitsGPT(t *testing.T) {
	t.Parallel()
	s := spec.ExampleGPT()
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	cu, err := ComputeUnits(s)
	if err != nil {
		t.Fatal(err)
	}
	want := (c.StepMACs()*s.Steps + int64(s.Data.Text.Bytes)*DataMACsPerByte + MACsPerCU - 1) / MACsPerCU
	if cu != want || cu < 2 {
		t.Fatalf("ComputeUnits(example GPT) = %d, want %d", cu, want)
	}
	longer := spec.ExampleGPT()
	longer.Steps *= 10
	if more, _ := ComputeUnits(longer); more <= cu {
		t.Fatalf("10× the steps costs %d CU, not more than %d", more, cu)
	}
}
