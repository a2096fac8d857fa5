package gptref

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/beluga-compute/beluga/spec/fixed"
)

// The numbers of SPEC.md §1 and §20.9, written for clarity: every helper is
// exact for every int64 argument it accepts (no domain restriction beyond
// what the spec states), so a hostile operator input cannot make it wrong.

const (
	actFrac    = 16    // A: residual stream, RMSNorm and SiLU outputs
	masterFrac = 24    // master weights
	gradBits   = 24    // G: a gradient between operators
	rmsBits    = 24    // RMSNorm keeps a row's top 24 bits (§20.11.2)
	momentFrac = 30    // AdamW's first moment and mean gradient
	probBits   = 15    // the loss's probabilities (Q15)
	log2e      = 94548 // log₂e in Q16
	ln2        = 45426 // ln 2 in Q16
	maxI64     = math.MaxInt64
	minI32     = math.MinInt32
	maxI32     = math.MaxInt32
)

// uabs is |x| as an unsigned number (exact for MinInt64 too).
func uabs(x int64) uint64 {
	if x < 0 {
		return uint64(-(x + 1)) + 1
	}
	return uint64(x)
}

// bitLen is BitLen of §1: the number of bits of |x|.
func bitLen(x int64) int64 { return int64(bits.Len64(uabs(x))) }

// roundShift is RoundShift(x, s) of §1 for any s ≥ 0: ⌊(x + 2^(s−1)) / 2^s⌋,
// computed without forming x + 2^(s−1).
func roundShift(x, s int64) int64 {
	switch {
	case s <= 0:
		return x
	case s >= 64:
		return 0 // |x| ≤ 2^63 < 2^(s−1): the quotient is in [0, 1)
	}
	q := x >> uint(s) // ⌊x / 2^s⌋
	r := uint64(x) & (uint64(1)<<uint(s) - 1)
	if r >= uint64(1)<<uint(s-1) {
		q++
	}
	return q
}

// shiftRound is ShiftRound(x, k) of §20.9: x·2^k saturated to ±(2^63 − 1)
// for k ≥ 0, RoundShift(x, −k) for k < 0.
func shiftRound(x, k int64) int64 {
	if k < 0 {
		return roundShift(x, -k)
	}
	if x == 0 {
		return 0
	}
	if k >= 63 || bitLen(x)+k > 63 {
		if saturated != nil {
			saturated(siteShiftRound)
		}
		if x > 0 {
			return maxI64
		}
		return -maxI64
	}
	return x << uint(k)
}

// roundDiv is RoundDiv(a, d) of §20.9 for d > 0: ⌊(2a + d) / (2d)⌋, computed
// without forming 2a (which leaves int64 for |a| ≥ 2^62).
func roundDiv(a, d int64) int64 {
	q, r := a/d, a%d
	if r < 0 {
		q, r = q-1, r+d // floor division: 0 ≤ r < d
	}
	if r >= d-r { // 2r ≥ d
		q++
	}
	return q
}

// isqrt is Isqrt of §5.3 on a non-negative int64.
func isqrt(x int64) int64 { return int64(fixed.Isqrt(uint64(x))) }

// sigma is σ(u) of §20.9: the logistic function of an int32 u with A
// fractional bits, in Q15.
func sigma(u int64) int64 {
	if u < 0 {
		return 1<<15 - sigma(-u)
	}
	z := capAt(roundShift(u*log2e, 16))
	return roundDiv(1<<30, 1<<15+fixed.Exp2NegQ15(z))
}

// quantize is Norm(x, e, β) of §20.9 on the whole of x.
func quantize(x []int64, e int64, beta int) ([]int64, int64) {
	var m uint64
	for _, v := range x {
		m = max(m, uabs(v))
	}
	q := make([]int64, len(x))
	if m == 0 {
		return q, e
	}
	s := int64(bits.Len64(m)) - int64(beta)
	lim := int64(1)<<beta - 1
	for i, v := range x {
		if s > 0 {
			q[i] = clampAt(siteNorm, roundShift(v, s), -lim, lim)
		} else {
			q[i] = v << uint(-s) // |v| < 2^(β+s): no overflow
		}
	}
	return q, e + s
}

// quantizeRows is NormRow of §20.11: Norm on each row of x [rows, cols] on
// its own, row r starting at exponent e[r].
func quantizeRows(x []int64, cols int, e []int64, beta int) ([]int64, []int64) {
	q := make([]int64, len(x))
	eq := make([]int64, len(e))
	for r := range e {
		row, er := quantize(x[r*cols:(r+1)*cols], e[r], beta)
		copy(q[r*cols:], row)
		eq[r] = er
	}
	return q, eq
}

// block is one column block of a tensor in NormParts: its values and
// exponent.
type block struct {
	x []int64
	e int64
}

// quantizeParts is NormParts of §20.9: the blocks (each [rows, width_k],
// together the column blocks of one [rows, Σ width] tensor) to β bits at
// one exponent. It returns each block's quantised values and the exponent.
func quantizeParts(blocks []block, beta int) ([][]int64, int64) {
	out := make([][]int64, len(blocks))
	top, any := int64(0), false
	for _, b := range blocks {
		var m uint64
		for _, v := range b.x {
			m = max(m, uabs(v))
		}
		if m > 0 {
			t := b.e + int64(bits.Len64(m))
			if !any || t > top {
				top, any = t, true
			}
		}
	}
	if !any {
		for k, b := range blocks {
			out[k] = make([]int64, len(b.x))
		}
		return out, blocks[0].e
	}
	e := top - int64(beta)
	lim := int64(1)<<beta - 1
	for k, b := range blocks {
		out[k] = make([]int64, len(b.x))
		for i, v := range b.x {
			out[k][i] = clampAt(siteNormParts, shiftRound(v, b.e-e), -lim, lim)
		}
	}
	return out, e
}

// addGrads is Add((x, ex), (v, ey)) of §20.9.
func addGrads(x []int64, ex int64, v []int64, ey int64) ([]int64, int64) {
	var mx, mv uint64
	for i := range x {
		mx, mv = max(mx, uabs(x[i])), max(mv, uabs(v[i]))
	}
	if mx == 0 && mv == 0 {
		return make([]int64, len(x)), ex
	}
	var top int64
	switch {
	case mx == 0:
		top = ey + int64(bits.Len64(mv))
	case mv == 0:
		top = ex + int64(bits.Len64(mx))
	default:
		top = max(ey+int64(bits.Len64(mv)), ex+int64(bits.Len64(mx)))
	}
	e := top - gradBits
	out := make([]int64, len(x))
	for i := range x {
		// Each term is below 2^24 in magnitude by the choice of e.
		out[i] = shiftRound(x[i], ex-e) + shiftRound(v[i], ey-e)
	}
	return out, e
}

// arith does the int64 arithmetic whose operands the graph's value ranges
// do not bound tightly enough: it records the first result that leaves
// int64 (a hostile input, or a value beyond SPEC.md §20.16's bounds), and
// the operator then fails with ErrOverflow instead of computing garbage.
type arith struct {
	op  string
	err error
}

func (a *arith) overflow(what string, x, y int64) int64 {
	if a.err == nil {
		a.err = fmt.Errorf("%w: %s: %s of %d and %d leaves int64", ErrOverflow, a.op, what, x, y)
	}
	return 0
}

func (a *arith) add(x, y int64) int64 {
	s := x + y
	if (x > 0 && y > 0 && s < 0) || (x < 0 && y < 0 && s >= 0) {
		return a.overflow("sum", x, y)
	}
	return s
}

func (a *arith) mul(x, y int64) int64 {
	hi, lo := bits.Mul64(uabs(x), uabs(y))
	neg := (x < 0) != (y < 0)
	if hi != 0 || lo > math.MaxInt64 && !(neg && lo == 1<<63) {
		return a.overflow("product", x, y)
	}
	if neg {
		return -int64(lo)
	}
	return int64(lo)
}

// lsh is x·2^k for 0 ≤ k, exact or an overflow.
func (a *arith) lsh(x, k int64) int64 {
	if x == 0 {
		return 0
	}
	if k >= 63 || bitLen(x)+k > 63 {
		return a.overflow("shift", x, k)
	}
	return x << uint(k)
}

// reject records that an input breaks a rule that its range cannot state
// (such as the causal mask's zeros).
func (a *arith) reject(what string) {
	if a.err == nil {
		a.err = fmt.Errorf("%w: %s: %s", ErrBadOpInput, a.op, what)
	}
}

// Saturation sites of SPEC.md §20 (tests set saturated to see which a run
// reaches; nil elsewhere).
const (
	siteAdamMean   = "adamw: mean gradient clamp ±2^62"
	siteAdamNormT  = "adamw: norm term clamp ±2^31"
	siteAdamClipIn = "adamw: clip input clamp ±2^46"
	siteAdamH      = "adamw: h clamp ±(2^31 − 1)"
	siteAdamMu     = "adamw: μ clamp ±(2^31 − 1)"
	siteAdamW      = "adamw: weight clamp ±(2^31 − 1)"
	siteEmbed      = "embedding Sat32"
	siteResidual   = "residual Sat32"
	siteUp         = "SiLU input Sat32"
	siteNorm       = "Norm clamp ±(2^b − 1)"
	siteNormParts  = "NormParts clamp ±(2^b − 1)"
	siteExpCap     = "exponent argument capped at 2^32"
	siteShiftRound = "ShiftRound saturation ±(2^63 − 1)"
)

var saturated func(site string)

// clampAt is fixed.Clamp that reports when it changes x.
func clampAt(site string, x, lo, hi int64) int64 {
	c := fixed.Clamp(x, lo, hi)
	if c != x && saturated != nil {
		saturated(site)
	}
	return c
}

// capAt is min(x, 1<<32) that reports when it caps.
func capAt(x int64) int64 {
	if x > 1<<32 {
		if saturated != nil {
			saturated(siteExpCap)
		}
		return 1 << 32
	}
	return x
}
