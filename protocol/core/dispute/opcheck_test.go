package dispute

import (
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// TestCheckOpeningAndMatchOutputs: an opening passes only with the
// operator's inputs, in order, each at its agreed hash (errors wrap the
// caller's sentinel); MatchOutputs says which claim matches every output.
func TestCheckOpeningAndMatchOutputs(t *testing.T) {
	t.Parallel()
	errBad := errors.New("test: bad opening")
	pos := map[string]int{"a": 0, "b": 1, "y": 2}
	hash := func(name string, v opgraph.Tensor) (int, merkle.Digest, error) {
		if len(v.Data) == 0 {
			return 0, merkle.Digest{}, errors.New("empty")
		}
		return pos[name], merkle.Digest{byte(v.Data[0])}, nil
	}
	ten := func(v int64) opgraph.Tensor { return opgraph.Tensor{Shape: []int{1}, Data: []int64{v}} }
	o := &opgraph.OpInfo{Name: "op", Inputs: []string{"a", "b"}, Outputs: []string{"y"}}
	agreed := []merkle.Digest{{1}, {2}, {3}}
	in, err := CheckOpening(o, []NamedTensor{{"a", ten(1)}, {"b", ten(2)}}, agreed, hash, errBad)
	if err != nil || len(in) != 2 || in["b"].Data[0] != 2 {
		t.Fatalf("a good opening: %v %v", in, err)
	}
	for name, opened := range map[string][]NamedTensor{
		"too few":    {{"a", ten(1)}},
		"wrong name": {{"b", ten(2)}, {"a", ten(1)}},
		"wrong hash": {{"a", ten(1)}, {"b", ten(9)}},
		"unhashable": {{"a", ten(1)}, {"b", opgraph.Tensor{}}},
	} {
		if _, err := CheckOpening(o, opened, agreed, hash, errBad); !errors.Is(err, errBad) {
			t.Errorf("%s: %v, want the sentinel", name, err)
		}
	}
	s, v, err := MatchOutputs(o, map[string]opgraph.Tensor{"y": ten(3)}, agreed, []merkle.Digest{{1}, {2}, {4}}, hash)
	if err != nil || !s || v {
		t.Errorf("MatchOutputs: %v %v %v, want the solver's alone", s, v, err)
	}
	if _, _, err := MatchOutputs(o, map[string]opgraph.Tensor{}, agreed, agreed, hash); err == nil {
		t.Error("MatchOutputs hashed a missing output")
	}
}
