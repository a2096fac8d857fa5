// Package fixed holds gnark gadgets for Beluga's integer semantics (SPEC.md
// §1, §8): range checks, the rounding shift, clamps, ReLU, int32 saturation,
// Scale and multiply-accumulate. Each gadget is a plain function over
// frontend.API and computes, bit for bit, what the function of the same name
// in spec/fixed computes on the integers that the field elements represent.
//
// # Representation
//
// A signed integer X is the field element X mod p (p the BN254 scalar
// field, about 2^253.6); negative X are p − |X|. "The integer of x" below is
// the representative of x in (−p/2, p/2).
//
// # Bounds
//
// Each gadget takes a bound b meaning: the honest caller guarantees
// |X| ≤ 2^b for its input. A wrong bound can only make an honest witness
// fail (completeness); it never lets a false statement through, because
// every gadget's own range checks pin the integer of its input into a window
// far smaller than p, and within that window the field equation is an
// integer equation. The doc comment of each gadget states the window and
// the bound it proves for its output; callers propagate the proven output
// bounds, never the honest ones. Bounds are limited to MaxBound bits so
// that every window stays below 2^250 < p/8.
//
// # Soundness
//
// Nothing here compares field elements as 254-bit integers: a comparison is
// a prover-chosen selector bit whose claim is certified by a range check on
// a difference. If the selector lies, the difference is negative, i.e. a
// field element ≥ p − 2^(MaxBound+3), which no range check of ≤ MaxBound+2
// bits accepts.
package fixed

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/rangecheck"
)

// MaxBound is the largest input bound, in bits, that any gadget accepts.
// Every window the soundness arguments use is then below 2^(MaxBound+4),
// far below p ≈ 2^253.6.
const MaxBound = 200

// MaxShift is the largest shift RoundShift accepts.
const MaxShift = 200

func init() {
	solver.RegisterHint(GetHints()...)
}

// GetHints returns the hints this package's gadgets use, for provers that
// register hints explicitly.
func GetHints() []solver.Hint {
	return []solver.Hint{roundShiftHint, clampHint, negHint}
}

func checkBound(name string, b int) {
	if b < 0 || b > MaxBound {
		panic(fmt.Sprintf("circuits/fixed: %s bound %d outside [0, %d]", name, b, MaxBound))
	}
}

// Check constrains 0 ≤ x < 2^bits (std/rangecheck: a log-derivative lookup
// argument, a few constraints per 16-bit limb).
func Check(api frontend.API, x frontend.Variable, bits int) {
	if bits < 0 || bits > MaxBound+4 {
		panic(fmt.Sprintf("circuits/fixed: range check of %d bits", bits))
	}
	rangecheck.New(api).Check(x, bits)
}

// CheckSigned constrains −2^(bits−1) ≤ x < 2^(bits−1), bits ≥ 1.
func CheckSigned(api frontend.API, x frontend.Variable, bits int) {
	if bits < 1 {
		panic(fmt.Sprintf("circuits/fixed: signed range check of %d bits", bits))
	}
	Check(api, api.Add(x, pow2(bits-1)), bits)
}

// CheckInt32 constrains x to the int32 range.
func CheckInt32(api frontend.API, x frontend.Variable) { CheckSigned(api, x, 32) }

// RoundShift returns RoundShift(x, s) of SPEC.md §1: ⌊(x + 2^(s−1)) / 2^s⌋,
// round to nearest with ties toward +∞, and x itself when s = 0.
//
// The prover supplies q, r by hint; the constraints are
//
//	x + 2^(s−1) = q·2^s + r,   0 ≤ r < 2^s,   −2^(w−1) ≤ q < 2^(w−1),
//
// with w = max(b − s + 2, 1). Honest values: |x| ≤ 2^b gives |q| ≤ 2^(b−s)
// (s ≤ b) or q = 0 (s > b), inside the range. Soundness: the right side is
// an integer of absolute value < 2^(max(b+1, s)+1) < p/2, so x's integer X
// equals it exactly, and then q and r are the floor quotient and remainder
// of X + 2^(s−1) by 2^s: q = RoundShift(X, s), whatever x was. The output
// is proven to satisfy |q| ≤ 2^(max(b−s+1, 0)).
//
// Cost: one equation (no multiplication), a range check of s bits and one
// of w bits.
func RoundShift(api frontend.API, x frontend.Variable, s, b int) frontend.Variable {
	checkBound("RoundShift", b)
	if s < 0 || s > MaxShift {
		panic(fmt.Sprintf("circuits/fixed: RoundShift by %d", s))
	}
	if s == 0 {
		return x
	}
	res, err := api.Compiler().NewHint(roundShiftHint, 2, x, s)
	if err != nil {
		panic(err)
	}
	q, r := res[0], res[1]
	api.AssertIsEqual(api.Add(x, pow2(s-1)), api.Add(api.Mul(q, pow2(s)), r))
	Check(api, r, s)
	CheckSigned(api, q, RoundShiftOutBound(s, b)+1)
	return q
}

// RoundShiftOutBound is the bound RoundShift proves for its output:
// |q| ≤ 2^RoundShiftOutBound(s, b).
func RoundShiftOutBound(s, b int) int {
	if s == 0 {
		return b
	}
	return max(b-s+1, 0)
}

// Clamp returns min(max(x, lo), hi) for lo ≤ hi.
//
// The prover supplies bits below = [X < lo] and above = [X > hi]; both are
// constrained boolean and certified by range checks of n bits on
//
//	d₁ = below ? lo − 1 − x : x − lo,   d₂ = above ? x − hi − 1 : hi − x,
//
// with n = max(b, BitLen(lo), BitLen(hi)) + 2. Honest values (|X| ≤ 2^b)
// give 0 ≤ dᵢ < 2^n. Soundness: d₁ ∈ [0, 2^n) pins X to lo + d₁ or
// lo − 1 − d₁, an integer of absolute value < 2^(n+1) whichever branch, and
// in that window below = [X < lo] exactly (a lie makes d₁ a negative integer,
// i.e. a field element ≥ p − 2^(n+1), which fails the check); likewise
// above. Both cannot be 1 since lo ≤ hi. The output is proven in [lo, hi].
//
// Cost: 4 R1CS constraints (two booleans, below·x, above·x) and two range
// checks of n bits.
func Clamp(api frontend.API, x frontend.Variable, lo, hi *big.Int, b int) frontend.Variable {
	checkBound("Clamp", b)
	if lo.Cmp(hi) > 0 {
		panic("circuits/fixed: Clamp with lo > hi")
	}
	n := max(b, lo.BitLen(), hi.BitLen()) + 2
	if n > MaxBound+2 {
		panic("circuits/fixed: Clamp limits too large")
	}
	res, err := api.Compiler().NewHint(clampHint, 2, x, lo, hi)
	if err != nil {
		panic(err)
	}
	below, above := res[0], res[1]
	api.AssertIsBoolean(below)
	api.AssertIsBoolean(above)
	bx := api.Mul(below, x)
	ax := api.Mul(above, x)
	// d₁ = x − lo + below·(2lo − 1 − 2x)
	loM := new(big.Int).Sub(new(big.Int).Lsh(lo, 1), big.NewInt(1))
	d1 := api.Sub(api.Add(api.Sub(x, lo), api.Mul(below, loM)), api.Mul(bx, 2))
	// d₂ = hi − x + above·(2x − 2hi − 1)
	hiM := new(big.Int).Add(new(big.Int).Lsh(hi, 1), big.NewInt(1))
	d2 := api.Sub(api.Add(api.Sub(hi, x), api.Mul(ax, 2)), api.Mul(above, hiM))
	Check(api, d1, n)
	Check(api, d2, n)
	// y = x + below·(lo − x) + above·(hi − x)
	return api.Add(api.Sub(x, bx, ax), api.Mul(below, lo), api.Mul(above, hi))
}

// ClampInt is Clamp with int64 limits.
func ClampInt(api frontend.API, x frontend.Variable, lo, hi int64, b int) frontend.Variable {
	return Clamp(api, x, big.NewInt(lo), big.NewInt(hi), b)
}

// Sat32 returns x saturated to the int32 range (SPEC.md §1); proven output
// bound 31 bits.
func Sat32(api frontend.API, x frontend.Variable, b int) frontend.Variable {
	return ClampInt(api, x, -1<<31, 1<<31-1, b)
}

// ReLU returns max(x, 0).
//
// The prover supplies neg = [X < 0], constrained boolean and certified by a
// range check of b+1 bits on d = neg ? −1 − x : x. As in Clamp, d ∈ [0,
// 2^(b+1)) pins X to d or −1 − d and makes neg = [X < 0] exactly. The
// output is proven in [0, 2^(b+1)).
//
// Cost: 2 R1CS constraints (boolean, neg·x) and one range check.
func ReLU(api frontend.API, x frontend.Variable, b int) frontend.Variable {
	checkBound("ReLU", b)
	res, err := api.Compiler().NewHint(negHint, 1, x)
	if err != nil {
		panic(err)
	}
	neg := res[0]
	api.AssertIsBoolean(neg)
	nx := api.Mul(neg, x)
	// d = x + neg·(−1 − 2x)
	Check(api, api.Sub(x, neg, api.Mul(nx, 2)), b+1)
	return api.Sub(x, nx)
}

// Scale returns Scale(x, k) of SPEC.md §1 for |X| ≤ 2^b: Sat32(x·2^k) for
// k ≥ 0 and Sat32(RoundShift(x, min(−k, 62))) for k < 0. Proven output
// bound 31 bits.
//
// The left-shift case is exact: spec/fixed saturates early when
// BitLen(x) + k > 62 or k ≥ 32 only because int64 would overflow, and in
// those cases |x·2^k| ≥ 2^62 saturates anyway; here x·2^k is an integer of
// at most b + k bits, far below p, so Sat32 of the product is the spec's
// value.
func Scale(api frontend.API, x frontend.Variable, k, b int) frontend.Variable {
	checkBound("Scale", b)
	if k >= 0 {
		if b+k > MaxBound {
			panic(fmt.Sprintf("circuits/fixed: Scale by 2^%d of a %d-bit value", k, b))
		}
		return Sat32(api, api.Mul(x, pow2(k)), b+k)
	}
	s := min(-k, 62)
	return Sat32(api, RoundShift(api, x, s, b), RoundShiftOutBound(s, b))
}

// Dot returns Σ aᵢ·bᵢ (len(a) multiplications, i.e. len(a) R1CS
// constraints). The sum is exact over the integers as long as the caller's
// bound on it (SPEC.md §10: below 2^31) is far below p/2, which it is.
func Dot(api frontend.API, a, b []frontend.Variable) frontend.Variable {
	if len(a) != len(b) {
		panic("circuits/fixed: Dot of unequal lengths")
	}
	var acc frontend.Variable = 0
	for i := range a {
		acc = api.MulAcc(acc, a[i], b[i])
	}
	return acc
}

func pow2(n int) *big.Int { return new(big.Int).Lsh(big.NewInt(1), uint(n)) }

// signed returns the representative of x mod field in (−field/2, field/2].
func signed(field, x *big.Int) *big.Int {
	v := new(big.Int).Mod(x, field)
	if v.Cmp(new(big.Int).Rsh(field, 1)) > 0 {
		v.Sub(v, field)
	}
	return v
}

// roundShiftHint: inputs x, s; outputs q = ⌊(X + 2^(s−1)) / 2^s⌋ and
// r = X + 2^(s−1) − q·2^s.
func roundShiftHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 2 || len(out) != 2 || !in[1].IsInt64() || in[1].Int64() < 1 || in[1].Int64() > MaxShift {
		return fmt.Errorf("circuits/fixed: roundShiftHint arguments")
	}
	s := uint(in[1].Int64())
	x := signed(field, in[0])
	x.Add(x, new(big.Int).Lsh(big.NewInt(1), s-1))
	q := new(big.Int).Rsh(x, s) // arithmetic shift: floor for negative x
	r := new(big.Int).Sub(x, new(big.Int).Lsh(q, s))
	out[0].Mod(q, field)
	out[1].Set(r)
	return nil
}

// clampHint: inputs x, lo, hi; outputs [X < lo], [X > hi].
func clampHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 3 || len(out) != 2 {
		return fmt.Errorf("circuits/fixed: clampHint arguments")
	}
	x := signed(field, in[0])
	out[0].SetUint64(b2u(x.Cmp(signed(field, in[1])) < 0))
	out[1].SetUint64(b2u(x.Cmp(signed(field, in[2])) > 0))
	return nil
}

// negHint: input x; output [X < 0].
func negHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 1 || len(out) != 1 {
		return fmt.Errorf("circuits/fixed: negHint arguments")
	}
	out[0].SetUint64(b2u(signed(field, in[0]).Sign() < 0))
	return nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
