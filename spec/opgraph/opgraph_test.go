package opgraph

import (
	"errors"
	"testing"
)

// TestCheck: a tensor passes only with its description's exact shape, its
// element count and every value in range; failures wrap ErrBadOpInput and
// never read past a mismatched length.
func TestCheck(t *testing.T) {
	t.Parallel()
	info := TensorInfo{Name: "x", Kind: Intermediate, Shape: []int{2, 3}, Min: -4, Max: 4}
	ok := Tensor{Shape: []int{2, 3}, Data: []int64{-4, 0, 1, 2, 3, 4}}
	if err := info.Check(ok); err != nil || info.Len() != 6 {
		t.Fatalf("a valid tensor: %v", err)
	}
	for name, v := range map[string]Tensor{
		"rank":        {Shape: []int{6}, Data: ok.Data},
		"shape":       {Shape: []int{3, 2}, Data: ok.Data},
		"short data":  {Shape: []int{2, 3}, Data: ok.Data[:5]},
		"long data":   {Shape: []int{2, 3}, Data: append(ok.Clone().Data, 0)},
		"above range": {Shape: []int{2, 3}, Data: []int64{0, 0, 0, 0, 0, 5}},
		"below range": {Shape: []int{2, 3}, Data: []int64{-5, 0, 0, 0, 0, 0}},
		"hostile":     {Shape: []int{1 << 40, -1}, Data: nil},
	} {
		if err := info.Check(v); !errors.Is(err, ErrBadOpInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := ok.Clone()
	c.Data[0], c.Shape[0] = 9, 9
	if ok.Data[0] != -4 || ok.Shape[0] != 2 {
		t.Fatal("Clone shares memory")
	}
}
