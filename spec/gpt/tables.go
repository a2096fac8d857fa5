package gpt

import (
	"math/bits"
	"sync"

	"github.com/beluga-compute/beluga/spec/fixed"
)

// Tables that make the integer functions fast without changing a bit of
// their results (tables_test.go checks them against the definitions).
var (
	tablesOnce sync.Once
	// exp2Poly[f] is Exp2NegQ15's polynomial at fraction f, before its
	// final RoundShift(·, 15 + k): 2^29 < p ≤ 2^30.
	exp2Poly []int32
	// sigmoidRecip[e] = RoundDiv(2^30, 2^15 + e) for e = Exp2NegQ15(z) ∈ [0, 2^15].
	sigmoidRecip []int32
	// sqrtTab[t] = ⌊√t⌋ for t < 2^16.
	sqrtTab []uint16
)

func initTables() {
	tablesOnce.Do(func() {
		exp2Poly = make([]int32, 1<<16)
		for f := range exp2Poly {
			p := int64(7404729)
			for _, c := range [...]int64{-57282819, 257194104, -744184767, 1073741824} {
				p = c + fixed.RoundShift(p*int64(f), 16)
			}
			exp2Poly[f] = int32(p)
		}
		sqrtTab = make([]uint16, 1<<16)
		for t := range sqrtTab {
			sqrtTab[t] = uint16(fixed.Isqrt(uint64(t)))
		}
		sigmoidRecip = make([]int32, 1<<15+1)
		for e := range sigmoidRecip {
			sigmoidRecip[e] = int32(roundDiv(1<<30, 1<<15+int64(e)))
		}
	})
}

// exp2NegQ15 is fixed.Exp2NegQ15 for 0 ≤ u ≤ expCap, from the table.
func exp2NegQ15(u int64) int64 {
	k := u >> 16
	if k > 47 {
		return 0
	}
	return (int64(exp2Poly[u&0xFFFF]) + int64(1)<<(14+k)) >> (15 + k)
}

// isqrt is ⌊√x⌋ for 0 ≤ x < 2^62, as fixed.Isqrt: a table of the square
// roots of 16-bit leading parts gives an over-estimate within 2^−7, two
// Newton steps bring it within one, and integer checks make it exact.
func isqrt(x int64) int64 {
	if x < 1<<16 {
		return int64(sqrtTab[x])
	}
	k := (bits.Len64(uint64(x)) - 15) &^ 1 // even, so √(x·2^−k) scales by 2^(k/2)
	r := (int64(sqrtTab[x>>k]) + 1) << (k / 2)
	r = (r + x/r) >> 1
	r = (r + x/r) >> 1
	for r*r > x {
		r--
	}
	for (r+1)*(r+1) <= x {
		r++
	}
	return r
}

// sigmoidBranchless is sigmoidQ15 from the tables, without data-dependent branches (the
// sign of u is random across a tensor, and a mispredicted branch costs
// more than the arithmetic).
func sigmoidBranchless(u int64) int64 {
	m := u >> 63
	a := (u ^ m) - m
	z := min((a*log2eQ16+1<<(ActFrac-1))>>ActFrac, expCap)
	k := z >> 16
	e := (int64(exp2Poly[z&0xFFFF]) + int64(1)<<(14+min(k, 47))) >> (15 + min(k, 47))
	e &= ^((47 - k) >> 63) // 0 when k > 47
	s := int64(sigmoidRecip[e])
	// u < 0: 2^15 − s.
	return s + (m & (1<<15 - 2*s))
}
