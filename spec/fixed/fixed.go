// Package fixed holds the integer primitives of Beluga's numeric semantics:
// the rounding shift, saturation, and the integer-only exp2 and log2 used by
// softmax cross-entropy. SPEC.md §"Integer primitives" defines each one; the
// functions here are that definition, written once, for the reference step,
// the fast engine and the circuits' witness builders alike.
//
// Every function is total on the documented domain and uses no floating
// point, so every platform computes the same bits.
package fixed

import "math/bits"

// RoundShift returns x / 2^s rounded to nearest, ties toward +∞:
// ⌊(x + 2^(s-1)) / 2^s⌋, and x itself when s == 0. Domain: 0 ≤ s ≤ 62 and
// |x| < 2^62, which every caller's bounds guarantee.
func RoundShift(x int64, s uint) int64 {
	if s == 0 {
		return x
	}
	return (x + int64(1)<<(s-1)) >> s
}

// Clamp returns x limited to [lo, hi].
func Clamp(x, lo, hi int64) int64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

// Sat32 saturates x to the int32 range.
func Sat32(x int64) int32 {
	return int32(Clamp(x, -1<<31, 1<<31-1))
}

// Scale returns x · 2^k saturated to the int32 range: a saturating left
// shift when k ≥ 0, RoundShift(x, -k) when k < 0. Domain: |x| < 2^62,
// -62 ≤ k ≤ 62 (larger right shifts give 0 or -1 by rounding, so they are
// clamped to 62 without changing the result for |x| < 2^61).
func Scale(x int64, k int) int32 {
	if k >= 0 {
		if x == 0 {
			return 0
		}
		if k >= 32 || bits.Len64(uabs(x))+k > 62 {
			if x > 0 {
				return 1<<31 - 1
			}
			return -1 << 31
		}
		return Sat32(x << uint(k))
	}
	if k < -62 {
		k = -62
	}
	return Sat32(RoundShift(x, uint(-k)))
}

func uabs(x int64) uint64 {
	if x < 0 {
		return uint64(-x)
	}
	return uint64(x)
}

// BitLen returns the number of bits of |x| (0 for 0).
func BitLen(x int64) int { return bits.Len64(uabs(x)) }

// exp2Coeff are the coefficients, scaled by 2^30, of the degree-4
// polynomial P(f) ≈ 2^-f on [0, 1) evaluated by Exp2NegQ15.
var exp2Coeff = [5]int64{1073741824, -744184767, 257194104, -57282819, 7404729}

// Exp2NegQ15 returns 2^(-u/2^16) in Q15 (1.0 = 32768) for u ≥ 0:
// with k = u >> 16 and f = u mod 2^16, evaluate by Horner
// p = c4; p = c_j + RoundShift(p·f, 16) for j = 3, 2, 1, 0;
// then return RoundShift(p, 15 + k), or 0 when 15 + k > 62.
// Its error is below 0.6 units in the last place.
func Exp2NegQ15(u int64) int64 {
	if u < 0 {
		panic("fixed: Exp2NegQ15 of negative argument")
	}
	k := u >> 16
	f := u & 0xFFFF
	p := exp2Coeff[4]
	for j := 3; j >= 0; j-- {
		p = exp2Coeff[j] + RoundShift(p*f, 16)
	}
	if 15+k > 62 {
		return 0
	}
	return RoundShift(p, uint(15+k))
}

// log2Coeff are the coefficients, scaled by 2^30, of the degree-6
// polynomial Q(t) ≈ log2(1 + t) on [0, 1) evaluated by Log2Q16.
var log2Coeff = [7]int64{0, 1548909925, -770982697, 490869795, -297793325, 130430585, -27694320}

// Log2Q16 returns log2(x) in Q16 for x ≥ 1: with n = BitLen(x) - 1 and the
// mantissa m = x·2^(16-n) when n ≤ 16 and ⌊x / 2^(n-16)⌋ when n > 16,
// t = m - 2^16, evaluate q = c6; q = c_j + RoundShift(q·t, 16) for
// j = 5..0, and return n·2^16 + RoundShift(q, 14). Error below 0.7 units in
// the last place plus the mantissa truncation.
func Log2Q16(x uint64) int64 {
	if x == 0 {
		panic("fixed: Log2Q16 of zero")
	}
	n := bits.Len64(x) - 1
	var m uint64
	if n > 16 {
		m = x >> uint(n-16)
	} else {
		m = x << uint(16-n)
	}
	t := int64(m) - 1<<16
	q := log2Coeff[6]
	for j := 5; j >= 0; j-- {
		q = log2Coeff[j] + RoundShift(q*t, 16)
	}
	return int64(n)<<16 + RoundShift(q, 14)
}

// Isqrt returns ⌊√x⌋.
func Isqrt(x uint64) uint64 {
	if x < 2 {
		return x
	}
	// Newton's method from an over-estimate converges downward.
	r := uint64(1) << ((bits.Len64(x) + 1) / 2)
	for {
		n := (r + x/r) / 2
		if n >= r {
			return r
		}
		r = n
	}
}
