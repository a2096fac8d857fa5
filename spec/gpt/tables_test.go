package gpt

import (
	"testing"

	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/prng"
)

// TestTablesMatchDefinitions: the table-driven exp2 and sigmoid equal the
// definitions on every fraction, at every integer part and on random
// arguments.
func TestTablesMatchDefinitions(t *testing.T) {
	t.Parallel()
	initTables()
	for f := int64(0); f < 1<<16; f++ {
		for _, k := range []int64{0, 1, 5, 20, 46, 47, 48, 60} {
			u := k<<16 | f
			if got, want := exp2NegQ15(u), fixed.Exp2NegQ15(u); got != want {
				t.Fatalf("exp2NegQ15(%d) = %d, want %d", u, got, want)
			}
		}
	}
	s := prng.Derive(1, "test.tables", 0, 0)
	for i := range uint64(200000) {
		u := int64(s.At(i)>>32) - 1<<31
		if i%3 == 0 {
			u >>= 12
		}
		if got, want := sigmoidFast(u), sigmoidQ15(u); got != want {
			t.Fatalf("sigmoidFast(%d) = %d, want %d", u, got, want)
		}
		if z := int64(s.At(i) >> 31); exp2NegQ15(z) != fixed.Exp2NegQ15(z) {
			t.Fatalf("exp2NegQ15(%d) differs", z)
		}
	}
	for _, u := range []int64{0, 1, -1, 1 << 31, -(1 << 31), 1<<31 - 1} {
		if sigmoidFast(u) != sigmoidQ15(u) {
			t.Fatalf("sigmoidFast(%d) differs", u)
		}
	}
}
