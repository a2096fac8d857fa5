package gpt

import (
	"math"
	"math/bits"

	"github.com/beluga-compute/beluga/spec/fixed"
)

// Fixed formats of version 2 (SPEC.md §"GPT numbers").
const (
	// ActFrac is the fractional bits of the residual stream and of the
	// inputs and outputs of RMSNorm and SiLU (int32).
	ActFrac = 16
	// MasterFrac is the fractional bits of master weights (int32).
	MasterFrac = 24
	// GradBits is the magnitude bits of a gradient tensor between operators.
	GradBits = 24
	// MomentFrac is the fractional bits of AdamW's first moment (int32) and
	// of the clipped gradient it averages.
	MomentFrac = 30
	// VarFrac is the fractional bits of AdamW's second moment (int64).
	VarFrac = 44
	// MaxVar bounds a second moment: 0 ≤ v ≤ 2^46.
	MaxVar = 1 << 46
	// ProbBits is the fractional bits of the loss's softmax probabilities.
	ProbBits = 15
)

const maxInt64 = math.MaxInt64

// roundShift is SPEC.md's RoundShift for any shift ≥ 0 (shifts ≥ 63 round
// everything to 0 or, for x ≥ 2^(s−1), to 1 — never reached by the bounds,
// but defined).
func roundShift(x int64, s int) int64 {
	if s <= 0 {
		return x
	}
	if s > 62 {
		// ⌊(x + 2^(s−1)) / 2^s⌋ with |x| ≤ 2^63: ±1 only at s = 63 and |x| ≥ 2^62.
		switch {
		case s == 63 && x >= 1<<62:
			return 1
		case s == 63 && x < -(1<<62):
			return -1
		}
		return 0
	}
	return fixed.RoundShift(x, uint(s))
}

// sat64 saturates an exact product x·2^k (k ≥ 0) to ±(2^63 − 1).
func shl(x int64, k int) int64 {
	if x == 0 || k == 0 {
		return x
	}
	if bits.Len64(uabs(x))+k > 62 {
		if x > 0 {
			return maxInt64
		}
		return -maxInt64
	}
	return x << uint(k)
}

// shiftRound returns x·2^k rounded: a saturating left shift for k ≥ 0, a
// RoundShift by −k for k < 0.
func shiftRound(x int64, k int) int64 {
	if k >= 0 {
		return shl(x, k)
	}
	return roundShift(x, -k)
}

// roundDiv is RoundDiv(a, d) = ⌊(2a + d) / (2d)⌋ for d > 0 — a/d rounded
// to nearest, ties up — computed as q + [2r ≥ d] from the floor division
// a = q·d + r, 0 ≤ r < d, so it is exact for every int64 a.
func roundDiv(a, d int64) int64 {
	q, r := a/d, a%d
	if r < 0 {
		q--
		r += d
	}
	if r >= d-r {
		q++
	}
	return q
}

func uabs(x int64) uint64 {
	if x < 0 {
		return uint64(-x)
	}
	return uint64(x)
}

func bitLen(x int64) int { return bits.Len64(uabs(x)) }

func clamp(x, lo, hi int64) int64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

func sat32(x int64) int32 { return int32(clamp(x, math.MinInt32, math.MaxInt32)) }

// normShift returns the shift s of Norm for a tensor whose largest
// magnitude is m: the values are divided by 2^s (s > 0) or multiplied by
// 2^−s (s ≤ 0) so that the largest has exactly b bits. m = 0 gives 0.
func normShift(m uint64, b int) int {
	if m == 0 {
		return 0
	}
	return bits.Len64(m) - b
}

// normValue applies a Norm shift s to one value with bound 2^b − 1.
func normValue(x int64, s, b int) int64 {
	lim := int64(1)<<b - 1
	if s > 0 {
		return clamp(roundShift(x, s), -lim, lim)
	}
	return clamp(x<<uint(-s), -lim, lim)
}

// maxAbs64 returns max |x| (branch-free: the loop compiles to conditional moves).
func maxAbs64(x []int64) uint64 {
	k, m := maxAbs64Vec(x)
	for _, v := range x[k:] {
		s := v >> 63
		a := uint64((v ^ s) - s)
		m = max(m, a)
	}
	return m
}

func maxAbs32(x []int32) uint64 {
	var m uint32
	for _, v := range x {
		s := v >> 31
		a := uint32((v ^ s) - s)
		m = max(m, a)
	}
	return uint64(m)
}

// quantize16 writes Norm's values of x for shift s and b bits into dst.
func quantize16(dst []int16, x []int64, s, b int) {
	dst = dst[:len(x)]
	lim := int64(1)<<b - 1
	if s <= 0 {
		for i, v := range x {
			dst[i] = int16(v << uint(-s)) // |v|·2^−s < 2^b by the choice of s
		}
		return
	}
	if s > 62 {
		clear(dst)
		return
	}
	k := quantize16Vec(dst, x, s, lim)
	half := int64(1) << (s - 1)
	for i := k; i < len(x); i++ {
		q := (x[i] + half) >> uint(s)
		q = min(max(q, -lim), lim)
		dst[i] = int16(q)
	}
}

// quantize16From32 is quantize16 of an int32 tensor.
func quantize16From32(dst []int16, x []int32, s, b int) {
	dst = dst[:len(x)]
	lim := int64(1)<<b - 1
	if s <= 0 {
		for i, v := range x {
			dst[i] = int16(int64(v) << uint(-s))
		}
		return
	}
	half := int64(1) << (s - 1)
	for i, v := range x {
		q := (int64(v) + half) >> uint(s)
		q = min(max(q, -lim), lim)
		dst[i] = int16(q)
	}
}

// Norm quantises the tensor (x, e) to b magnitude bits: it returns q and
// e' with q·2^e' ≈ x·2^e and max |q| having exactly b bits (0 for a zero
// tensor, whose exponent stays e).
func Norm(dst []int16, x []int64, e, b int) int {
	s := normShift(maxAbs64(x), b)
	quantize16(dst, x, s, b)
	return e + s
}

// Norm32 is Norm of an int32 tensor.
func Norm32(dst []int16, x []int32, e, b int) int {
	s := normShift(maxAbs32(x), b)
	quantize16From32(dst, x, s, b)
	return e + s
}

// sigmoidQ15 returns σ(u·2^−ActFrac) in Q15 (SPEC.md §"SiLU"):
// for u ≥ 0, e = Exp2NegQ15(RoundShift(u·94548, ActFrac)) and
// σ = ⌊(2^31 + 2^15 + e... see spec: RoundDiv(2^30, 2^15 + e); for u < 0,
// 2^15 − σ(−u).
func sigmoidQ15(u int64) int64 {
	neg := u < 0
	if neg {
		u = -u
	}
	z := roundShift(u*log2eQ16, ActFrac)
	if z > expCap {
		z = expCap
	}
	e := fixed.Exp2NegQ15(z)
	s := roundDiv(1<<30, 1<<15+e)
	if neg {
		return 1<<15 - s
	}
	return s
}

// log2eQ16 is round(log2(e)·2^16); expCap bounds Exp2NegQ15's argument
// (its result is 0 from 48·2^16 on).
const (
	log2eQ16 = 94548
	ln2Q16   = 45426
	expCap   = 1 << 32
)

// divider computes ⌊n / d⌋ for 0 ≤ n < 2^35 and 2^15 ≤ d < 2^35 — the
// softmaxes' divisions by one row's sum — with a multiplication: with
// r = ⌊2^35 / d⌋ ≤ 2^20, ⌊n·r / 2^35⌋ is ⌊n / d⌋ or one less (the error is
// below n / 2^35 < 1), and one comparison corrects it. Exact, like the
// division.
type divider struct{ d, r int64 }

func newDivider(d int64) divider { return divider{d: d, r: (1 << 35) / d} }

func (v divider) div(n int64) int64 {
	q := (n * v.r) >> 35
	if (q+1)*v.d <= n {
		q++
	}
	return q
}

// rounder computes RoundDiv(a, d) = ⌊(2a + d) / (2d)⌋ for a fixed d ≥ 1 and
// |a| < 2^61 with a 128-bit multiplication by ⌊2^64 / 2d⌋ and one
// correcting comparison instead of a division: exact.
type rounder struct {
	dd uint64 // 2d
	r  uint64 // ⌊(2^64 − 1) / 2d⌋
}

func newRounder(d int64) rounder {
	dd := uint64(2 * d)
	return rounder{dd: dd, r: ^uint64(0) / dd}
}

// floorDiv returns ⌊n / 2d⌋ for 0 ≤ n < 2^63.
func (v rounder) floorDiv(n uint64) uint64 {
	q, _ := bits.Mul64(n, v.r)
	// q ≤ ⌊n / 2d⌋ ≤ q + 1.
	if n-q*v.dd >= v.dd {
		q++
	}
	return q
}

func (v rounder) roundDiv(a int64) int64 {
	n := 2*a + int64(v.dd/2)
	if n >= 0 {
		return int64(v.floorDiv(uint64(n)))
	}
	// ⌊n / D⌋ = −⌈−n / D⌉ = −⌊(−n + D − 1) / D⌋.
	return -int64(v.floorDiv(uint64(-n) + v.dd - 1))
}
