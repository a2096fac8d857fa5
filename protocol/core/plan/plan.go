package plan

import (
	"fmt"
	"math"
	"math/big"

	"github.com/beluga-compute/beluga/protocol/core/challenge"
)

// PPM is one in parts per million.
const PPM = 1_000_000

// MaxSteps bounds steps and digest intervals, as SPEC.md §3 does.
const MaxSteps = 1 << 40

// MaxSamples is the most segments one challenge draws (challenge.MaxCount).
const MaxSamples = challenge.MaxCount

// Model is the adversary a sample count is sized against.
type Model int

const (
	// Clustered (the default): the cheater computes at least ⌈f·n⌉ steps
	// wrongly and places them to be missed as often as possible, packing
	// them into B = ⌈f·n / k⌉ segments. With s of N segments sampled
	// uniformly without replacement,
	//
	//	P(miss) = C(N−B, s) / C(N, s) = ∏_{i<s} (N−B−i) / (N−i).
	//
	// This is the worst case over every placement of that many bad steps:
	// a cheater's chance of escaping depends only on how many segments hold
	// a bad step, and ⌈f·n / k⌉ is the fewest that can.
	Clustered Model = iota
	// Independent: every step is bad independently with probability f.
	// With r = n − (N−1)·k steps in the last segment (1 ≤ r ≤ k), a sample
	// of s segments misses with probability
	//
	//	P(miss) = ((N−s)·(1−f)^(k·s) + s·(1−f)^(k·(s−1)+r)) / N,
	//
	// averaged over whether the short last segment is among the s (it is
	// with probability s/N); when k divides n this is (1−f)^(k·s). The
	// cheater's realised fraction of bad steps is f only on average, so at
	// k = 1 this model asks slightly more samples than Clustered; at larger
	// k it asks far fewer (bad steps spread over many segments). It is for
	// planning; it is not a bound on a cheater who chooses where to cheat.
	Independent
)

func (m Model) String() string {
	switch m {
	case Clustered:
		return "clustered"
	case Independent:
		return "independent"
	}
	return fmt.Sprintf("Model(%d)", int(m))
}

// ParseModel parses "clustered" or "independent".
func ParseModel(s string) (Model, error) {
	for _, m := range []Model{Clustered, Independent} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: model %q (want clustered or independent)", ErrInvalid, s)
}

// MarshalText writes the model's name, so reports say "clustered".
func (m Model) MarshalText() ([]byte, error) {
	if m != Clustered && m != Independent {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, m)
	}
	return []byte(m.String()), nil
}

// UnmarshalText is ParseModel.
func (m *Model) UnmarshalText(b []byte) error {
	v, err := ParseModel(string(b))
	if err == nil {
		*m = v
	}
	return err
}

// Segments returns N = ⌈n/k⌉, the number of segments of a run of n steps
// with digest interval k.
func Segments(n, k int64) int64 { return (n + k - 1) / k }

// BadSegments returns B = ⌈⌈fPPM·n / 10^6⌉ / k⌉ = ⌈f·n / k⌉, the fewest
// segments that hold ⌈f·n⌉ bad steps.
func BadSegments(n, k, fPPM int64) int64 {
	bad := (fPPM*n + PPM - 1) / PPM
	return (bad + k - 1) / k
}

func check(n, k, fPPM, cPPM int64, m Model) error {
	switch {
	case n < 1 || n > MaxSteps:
		return fmt.Errorf("%w: steps %d not in [1, 2^40]", ErrInvalid, n)
	case k < 1 || k > MaxSteps:
		return fmt.Errorf("%w: digest interval %d not in [1, 2^40]", ErrInvalid, k)
	case fPPM < 1 || fPPM > PPM:
		return fmt.Errorf("%w: cheat fraction %d ppm not in [1, 10^6]", ErrInvalid, fPPM)
	case cPPM < 1 || cPPM >= PPM:
		return fmt.Errorf("%w: confidence %d ppm not in [1, 999999]", ErrInvalid, cPPM)
	case m != Clustered && m != Independent:
		return fmt.Errorf("%w: %v", ErrInvalid, m)
	}
	return nil
}

// SampleCount returns the least number s of segments to sample so that a
// cheater of the given model, cheating on at least the fraction fPPM/10^6
// of a run of n steps with digest interval k, is caught with probability at
// least cPPM/10^6: the least s with P(miss) ≤ 1 − c.
//
// The result is exact: P(miss) is tracked as an interval of 128-bit fixed
// point numbers rounded outwards, and when the interval straddles 1 − c
// the comparison is redone in exact integer arithmetic (see doc.go). It
// fails with ErrInvalid on inputs outside n, k ∈ [1, 2^40],
// fPPM ∈ [1, 10^6], cPPM ∈ [1, 999999]; with ErrTooManySamples when s
// would exceed MaxSamples; and, for Independent, with ErrInfeasible when
// sampling every segment does not reach c.
func SampleCount(n, k, fPPM, cPPM int64, m Model) (int64, error) {
	if err := check(n, k, fPPM, cPPM, m); err != nil {
		return 0, err
	}
	N := Segments(n, k)
	if m == Clustered {
		return clusteredCount(N, BadSegments(n, k, fPPM), cPPM)
	}
	return independentCount(n, k, N, fPPM, cPPM)
}

// fracBits is the precision of the fixed-point bounds: values are integers
// over 2^fracBits.
const fracBits = 128

var one = new(big.Int).Lsh(big.NewInt(1), fracBits)

// threshold returns ⌊(1 − c)·2^fracBits⌋: for an integer x (over
// 2^fracBits), x ≤ threshold ⟺ x ≤ 1 − c, and x > threshold ⟺ x > 1 − c.
func threshold(cPPM int64) *big.Int {
	q := new(big.Int).Mul(big.NewInt(PPM-cPPM), one)
	return q.Quo(q, big.NewInt(PPM))
}

// mulFrac sets z = x·a/b rounded up or down (a, b > 0).
func mulFrac(z, x *big.Int, a, b int64, up bool, tmp *big.Int) {
	z.Mul(x, big.NewInt(a))
	z.QuoRem(z, big.NewInt(b), tmp)
	if up && tmp.Sign() != 0 {
		z.Add(z, big.NewInt(1))
	}
}

// fixMul sets z = x·y / 2^fracBits rounded up or down.
func fixMul(z, x, y *big.Int, up bool) {
	z.Mul(x, y)
	lowBits := z.TrailingZeroBits() < fracBits && z.Sign() != 0
	z.Rsh(z, fracBits)
	if up && lowBits {
		z.Add(z, big.NewInt(1))
	}
}

// powFrac returns (a/b)^e in fixed point, rounded up or down, for
// 0 ≤ a ≤ b, b > 0, e ≥ 0. Every partial product stays ≤ 1, so each of the
// ≤ 2·64 roundings moves the result by at most one unit of 2^−128.
func powFrac(a, b, e int64, up bool) *big.Int {
	base := new(big.Int)
	mulFrac(base, one, a, b, up, new(big.Int))
	r := new(big.Int).Set(one)
	for ; e > 0; e >>= 1 {
		if e&1 == 1 {
			fixMul(r, r, base, up)
		}
		if e > 1 {
			fixMul(base, base, base, up)
		}
	}
	return r
}

// clusteredCount is SampleCount for Clustered: the least s with
// ∏_{i<s} (N−B−i)/(N−i) ≤ 1 − c.
func clusteredCount(N, B, cPPM int64) (int64, error) {
	if B >= N {
		return 1, nil // every segment is bad
	}
	q := threshold(cPPM)
	last := N - B + 1 // P(miss) = 0 from here on
	if last > MaxSamples {
		// P(miss) at MaxSamples is at least (1 − B/(N−MaxSamples+1))^MaxSamples
		// (every factor is at least that): if even that bound is above
		// 1 − c, no count within the limit will do, and there is no need to
		// scan a million factors to find out.
		d := N - MaxSamples + 1
		if powFrac(d-B, d, MaxSamples, false).Cmp(q) > 0 {
			return 0, fmt.Errorf("%w: N=%d segments, B=%d bad", ErrTooManySamples, N, B)
		}
	}
	hi, lo := new(big.Int).Set(one), new(big.Int).Set(one)
	tmp := new(big.Int)
	for s := int64(1); s <= min(last, MaxSamples); s++ {
		a, b := N-B-(s-1), N-(s-1)
		if a == 0 {
			return s, nil
		}
		// Each step adds at most one unit of 2^−128 to either bound's
		// error (the factor a/b ≤ 1 does not amplify it), so after s ≤ 2^20
		// steps both are within 2^−108 of the true P(miss).
		mulFrac(hi, hi, a, b, true, tmp)
		mulFrac(lo, lo, a, b, false, tmp)
		switch {
		case hi.Cmp(q) <= 0:
			return s, nil
		case lo.Cmp(q) > 0:
			continue
		case clusteredMissAtMost(N, B, s, cPPM):
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: N=%d segments, B=%d bad", ErrTooManySamples, N, B)
}

// clusteredMissAtMost decides C(N−B, s)/C(N, s) ≤ 1 − c exactly. Of the two
// equal products
//
//	∏_{i<s} (N−B−i)/(N−i) = ∏_{j<B} (N−s−j)/(N−j)
//
// it multiplies out the one with fewer factors.
func clusteredMissAtMost(N, B, s, cPPM int64) bool {
	var num, den *big.Int
	if s <= B {
		num, den = rangeProduct(N-B-s+1, N-B), rangeProduct(N-s+1, N)
	} else {
		num, den = rangeProduct(N-s-B+1, N-s), rangeProduct(N-B+1, N)
	}
	num.Mul(num, big.NewInt(PPM))
	den.Mul(den, big.NewInt(PPM-cPPM))
	return num.Cmp(den) <= 0
}

// rangeProduct returns lo·(lo+1)·…·hi (1 when lo > hi, 0 when lo ≤ 0 ≤ hi),
// splitting the range in halves so that the multiplications stay balanced.
func rangeProduct(lo, hi int64) *big.Int {
	switch {
	case lo > hi:
		return big.NewInt(1)
	case lo <= 0:
		return big.NewInt(0)
	case hi-lo < 8:
		p := big.NewInt(lo)
		for x := lo + 1; x <= hi; x++ {
			p.Mul(p, big.NewInt(x))
		}
		return p
	}
	mid := lo + (hi-lo)/2
	return new(big.Int).Mul(rangeProduct(lo, mid), rangeProduct(mid+1, hi))
}

// exactExpLimit bounds the exponent for which independentMissAtMost falls
// back to exact integers (about 20 bits per unit: 5 Mbit numbers).
const exactExpLimit = 1 << 18

// independentCount is SampleCount for Independent.
func independentCount(n, k, N, fPPM, cPPM int64) (int64, error) {
	top := min(N, MaxSamples)
	if !independentMissAtMost(n, k, N, top, fPPM, cPPM) {
		if top == N {
			return 0, fmt.Errorf("%w: replaying all %d steps misses a cheater of %d ppm with probability (1−f)^n > 1−c", ErrInfeasible, n, fPPM)
		}
		return 0, fmt.Errorf("%w: N=%d segments", ErrTooManySamples, N)
	}
	// P(miss) does not increase with s (doc.go), so the least s is found
	// by bisection: the predicate is false below lo and true at hi.
	lo, hi := int64(0), top
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if independentMissAtMost(n, k, N, mid, fPPM, cPPM) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// independentMissAtMost decides
// ((N−s)·x^(k·s) + s·x^(k·(s−1)+r)) / N ≤ 1 − c with x = 1 − f.
func independentMissAtMost(n, k, N, s, fPPM, cPPM int64) bool {
	r := n - (N-1)*k
	e1, e2 := k*s, k*(s-1)+r // e2 ≤ e1 ≤ n ≤ 2^40
	x := PPM - fPPM
	// Bounds on N·P(miss)·2^128; the threshold scales by N.
	bound := func(up bool) *big.Int {
		a := powFrac(x, PPM, e1, up)
		a.Mul(a, big.NewInt(N-s))
		b := powFrac(x, PPM, e2, up)
		b.Mul(b, big.NewInt(s))
		return a.Add(a, b)
	}
	q := new(big.Int).Mul(big.NewInt(PPM-cPPM), one)
	q.Mul(q, big.NewInt(N))
	q.Quo(q, big.NewInt(PPM))
	switch {
	case bound(true).Cmp(q) <= 0:
		return true
	case bound(false).Cmp(q) > 0:
		return false
	case e1 > exactExpLimit:
		// Within 2^−100 of the threshold with exponents too large to
		// multiply out: count it as a miss, which can only ask for more
		// samples (sound). No policy of SPEC.md is known to get here.
		return false
	}
	// Exactly: 10^6·((N−s)·X^e1 + s·X^e2·10^(6(e1−e2))) ≤ (10^6−c)·N·10^(6·e1),
	// X = 10^6 − fPPM.
	X, P := big.NewInt(x), big.NewInt(PPM)
	lhs := new(big.Int).Exp(X, big.NewInt(e1), nil)
	lhs.Mul(lhs, big.NewInt(N-s))
	t := new(big.Int).Exp(X, big.NewInt(e2), nil)
	t.Mul(t, new(big.Int).Exp(P, big.NewInt(e1-e2), nil))
	t.Mul(t, big.NewInt(s))
	lhs.Add(lhs, t).Mul(lhs, P)
	rhs := new(big.Int).Exp(P, big.NewInt(e1), nil)
	rhs.Mul(rhs, big.NewInt((PPM-cPPM)*N))
	return lhs.Cmp(rhs) <= 0
}

// DetectionProbability returns 1 − C(N−B, s)/C(N, s), N = ⌈n/k⌉: the
// chance that s uniformly sampled segments include at least one of B bad
// ones. It is for reports (float64); decisions use SampleCount. Invalid
// input (n or k < 1, s or B < 0, s or B > N) gives 0.
func DetectionProbability(n, k, s, B int64) float64 {
	if n < 1 || k < 1 || s < 0 || B < 0 {
		return 0
	}
	N := Segments(n, k)
	switch {
	case s > N || B > N:
		return 0
	case s == 0 || B == 0:
		return 0
	case s > N-B:
		return 1
	}
	miss := 1.0
	if s <= B {
		for i := range s {
			miss *= float64(N-B-i) / float64(N-i)
		}
	} else {
		for j := range B {
			if miss *= float64(N-s-j) / float64(N-j); miss == 0 {
				break
			}
		}
	}
	return 1 - miss
}

// Confidence returns the probability that s sampled segments catch a
// cheater of the model cheating on fPPM of n steps at digest interval k
// (DetectionProbability with B = BadSegments for Clustered). For reports;
// invalid input gives 0.
func Confidence(n, k, s, fPPM int64, m Model) float64 {
	if check(n, k, fPPM, 1, m) != nil || s <= 0 || s > Segments(n, k) {
		return 0
	}
	if m == Clustered {
		return DetectionProbability(n, k, s, BadSegments(n, k, fPPM))
	}
	N := Segments(n, k)
	r := n - (N-1)*k
	lx := math.Log1p(-float64(fPPM) / PPM)
	miss := (float64(N-s)*math.Exp(float64(k*s)*lx) + float64(s)*math.Exp(float64(k*(s-1)+r)*lx)) / float64(N)
	return 1 - miss
}
