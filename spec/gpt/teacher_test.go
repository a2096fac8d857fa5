package gpt

import (
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestPositionsMatchLogits: one pass over a text gives, at every position,
// exactly the logits Logits gives for the text cut after it (what a
// teacher-forced check of generated text relies on).
func TestPositionsMatchLogits(t *testing.T) {
	t.Parallel()
	c := tinyConfig()
	g, err := NewGenerator(c, c.Init(), kernel.Best(), 2)
	if err != nil {
		t.Fatal(err)
	}
	text := []byte("a whale!")
	type row struct {
		z []int64
		e int
	}
	var got []row
	if err := g.Positions(text, 2, func(r int, z []int64, e int) error {
		got = append(got, row{slices.Clone(z), e})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(text)-2 {
		t.Fatalf("%d positions, want %d", len(got), len(text)-2)
	}
	for i, r := range got {
		z, e, err := g.Logits(text[:i+3])
		if err != nil {
			t.Fatal(err)
		}
		if e != r.e || !slices.Equal(z, r.z) {
			t.Fatalf("position %d: one pass differs from Logits of the prefix", i+2)
		}
	}
	for _, bad := range []struct {
		text []byte
		from int
	}{{nil, 0}, {text, -1}, {text, len(text)}, {make([]byte, c.Context+1), 0}} {
		if err := g.Positions(bad.text, bad.from, func(int, []int64, int) error { return nil }); err == nil {
			t.Errorf("Positions(%d bytes, from %d) accepted", len(bad.text), bad.from)
		}
	}
}
