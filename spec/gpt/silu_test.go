package gpt

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSiLUVec: the vector SiLU forward gives, element for element, the
// definition's u = Sat32(RoundShift(up, s)), σ = sigmoidQ15(u) and
// RoundShift(u·σ, 15), for inputs across every range (zero, small, both
// signs, past the int32 clamp, past the point where Exp2NegQ15 is 0) and
// every shift; it handles only whole vectors.
func TestSiLUVec(t *testing.T) {
	t.Parallel()
	initTables()
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n := 1 + rng.IntN(70)
		s := 1 + rng.IntN(62)
		up := make([]int64, n)
		for i := range up {
			switch rng.IntN(4) {
			case 0:
				up[i] = rng.Int64N(1<<20) - 1<<19
			case 1:
				up[i] = int64(rng.Uint64() >> (1 + rng.IntN(62)))
			case 2:
				up[i] = -int64(rng.Uint64() >> (1 + rng.IntN(62)))
			default:
				up[i] = rng.Int64N(1<<50) - 1<<49
			}
		}
		u32 := make([]int32, n)
		sig := make([]uint16, n)
		hs := make([]int64, n)
		done := siluVec(u32, sig, hs, up, s)
		if hasSiLUVec && done != n&^7 {
			t.Fatalf("did %d of %d", done, n)
		}
		for i := range done {
			u := min(max(roundShift(up[i], s), math.MinInt32), math.MaxInt32)
			sg := sigmoidQ15(u)
			if int64(u32[i]) != u || int64(sig[i]) != sg || hs[i] != roundShift(u*sg, 15) {
				t.Fatalf("trial %d, shift %d, up %d: got u %d σ %d hs %d, want %d %d %d", trial, s, up[i], u32[i], sig[i], hs[i], u, sg, roundShift(u*sg, 15))
			}
		}
	}
}
