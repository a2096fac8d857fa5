package gpt

import (
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

// sigmoidFast is sigmoidQ15 from the tables.
func sigmoidFast(u int64) int64 {
	neg := u < 0
	if neg {
		u = -u
	}
	z := min(roundShift(u*log2eQ16, ActFrac), expCap)
	s := int64(sigmoidRecip[exp2NegQ15(z)])
	if neg {
		return 1<<15 - s
	}
	return s
}
