package plan

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// refCount is SampleCount by brute force in big.Rat: the least s in
// [1, N] with P(miss) ≤ 1 − c, or 0 when there is none.
func refCount(n, k, fPPM, cPPM int64, m Model) int64 {
	N := Segments(n, k)
	T := big.NewRat(PPM-cPPM, PPM)
	for s := int64(1); s <= N; s++ {
		if refMiss(n, k, s, fPPM, m).Cmp(T) <= 0 {
			return s
		}
	}
	return 0
}

func refMiss(n, k, s, fPPM int64, m Model) *big.Rat {
	N := Segments(n, k)
	if m == Clustered {
		B := BadSegments(n, k, fPPM)
		num, den := new(big.Int).Binomial(N-B, s), new(big.Int).Binomial(N, s)
		if N-B < s {
			num.SetInt64(0)
		}
		return new(big.Rat).SetFrac(num, den)
	}
	r := n - (N-1)*k
	x := big.NewRat(PPM-fPPM, PPM)
	pow := func(e int64) *big.Rat {
		p := big.NewRat(1, 1)
		for range e {
			p.Mul(p, x)
		}
		return p
	}
	a := new(big.Rat).Mul(big.NewRat(N-s, 1), pow(k*s))
	b := new(big.Rat).Mul(big.NewRat(s, 1), pow(k*(s-1)+r))
	a.Add(a, b)
	return a.Quo(a, big.NewRat(N, 1))
}

func TestSampleCountTable(t *testing.T) {
	for _, c := range []struct {
		n, k, f, c int64
		m          Model
		want       int64
		err        error
	}{
		// N = 100, B = 1: P(miss) = (100−s)/100, ≤ 1/100 first at s = 99 (a tie).
		{100, 1, 10_000, 990_000, Clustered, 99, nil},
		{100, 1, 10_000, 989_999, Clustered, 99, nil},
		{100, 1, 10_000, 990_001, Clustered, 100, nil},
		// B = 1 ties at large N: P(miss) = (N−s)/N = 1/2 at s = N/2.
		{1_000_000, 1, 1, 500_000, Clustered, 500_000, nil},
		{2_000_000, 2, 1, 250_000, Clustered, 250_000, nil},
		// The reference audit target: n = 10,000 steps, f = 1%, c = 99%
		// (SPEC.md §15's vector; checked against Python fractions).
		{10_000, 1, 10_000, 990_000, Clustered, 448, nil},
		{10_000, 2, 10_000, 990_000, Clustered, 438, nil},
		{10_000, 4, 10_000, 990_000, Clustered, 419, nil},
		{10_000, 8, 10_000, 990_000, Clustered, 372, nil},
		{10_000, 16, 10_000, 990_000, Clustered, 300, nil},
		{10_000, 1, 10_000, 990_000, Independent, 459, nil},
		{10_000, 2, 10_000, 990_000, Independent, 230, nil},
		{10_000, 4, 10_000, 990_000, Independent, 115, nil},
		{10_000, 8, 10_000, 990_000, Independent, 58, nil},
		{10_000, 16, 10_000, 990_000, Independent, 29, nil},
		{1000, 1, 7000, 950_000, Clustered, 348, nil},
		{37, 1, 135_135, 999_999, Clustered, 33, nil}, // B = 5
		// Every segment bad.
		{10, 1, PPM, 999_999, Clustered, 1, nil},
		{10, 100, 1, 999_999, Clustered, 1, nil}, // one segment
		// Independent: (1/2)^2 = 1/4 exactly at s = 1 (a tie), short last segments.
		{8, 2, 500_000, 750_000, Independent, 1, nil},
		{10, 3, 500_000, 990_000, Independent, 3, nil},
		{10, 3, 100_000, 500_000, Independent, 3, nil},
		{7, 2, 500_000, 750_000, Independent, 2, nil},
		// Independent: a full replay still misses with probability 0.88^100-ish.
		{100, 7, 12_345, 876_543, Independent, 0, ErrInfeasible},
		// Beyond one challenge.
		{1 << 40, 1, 1, 999_999, Clustered, 0, ErrTooManySamples},
		{1 << 40, 1, 13, 999_999, Clustered, 0, ErrTooManySamples},
		{1 << 40, 1, 1, 999_999, Independent, 0, ErrTooManySamples},
		// Invalid.
		{0, 1, 1, 1, Clustered, 0, ErrInvalid},
		{1<<40 + 1, 1, 1, 1, Clustered, 0, ErrInvalid},
		{10, 0, 1, 1, Clustered, 0, ErrInvalid},
		{10, 1<<40 + 1, 1, 1, Clustered, 0, ErrInvalid},
		{10, 1, 0, 1, Clustered, 0, ErrInvalid},
		{10, 1, PPM + 1, 1, Clustered, 0, ErrInvalid},
		{10, 1, 1, 0, Clustered, 0, ErrInvalid},
		{10, 1, 1, PPM, Clustered, 0, ErrInvalid},
		{10, 1, 1, 1, Model(2), 0, ErrInvalid},
		{-5, 1, 1, 1, Clustered, 0, ErrInvalid},
	} {
		got, err := SampleCount(c.n, c.k, c.f, c.c, c.m)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("SampleCount(n=%d, k=%d, f=%d, c=%d, %v) = %d, %v; want %d, %v", c.n, c.k, c.f, c.c, c.m, got, err, c.want, c.err)
		}
	}
}

// TestSampleCountMatchesBruteForce compares with big.Rat on small jobs.
func TestSampleCountMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1500 {
		n := 1 + r.Int64N(60)
		k := 1 + r.Int64N(n+2)
		f := 1 + r.Int64N(PPM)
		if r.IntN(2) == 0 {
			f = 1 + r.Int64N(100_000)
		}
		c := 1 + r.Int64N(PPM-1)
		m := Model(r.IntN(2))
		checkAgainstRef(t, n, k, f, c, m)
	}
}

func checkAgainstRef(t *testing.T, n, k, f, c int64, m Model) {
	t.Helper()
	got, err := SampleCount(n, k, f, c, m)
	want := refCount(n, k, f, c, m)
	if want == 0 {
		if !errors.Is(err, ErrInfeasible) || m != Independent {
			t.Fatalf("SampleCount(%d, %d, %d, %d, %v) = %d, %v; want ErrInfeasible", n, k, f, c, m, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("SampleCount(%d, %d, %d, %d, %v) = %d, %v; want %d", n, k, f, c, m, got, err, want)
	}
}

func FuzzSampleCount(f *testing.F) {
	f.Add(int64(100), int64(1), int64(10_000), int64(990_000), false)
	f.Add(int64(8), int64(2), int64(500_000), int64(750_000), true)
	f.Add(int64(37), int64(1), int64(135_135), int64(999_999), false)
	f.Fuzz(func(t *testing.T, n, k, fPPM, cPPM int64, independent bool) {
		m := Clustered
		if independent {
			m = Independent
		}
		if n < 1 || n > 80 || k < 1 || k > 100 || check(n, k, fPPM, cPPM, m) != nil {
			if _, err := SampleCount(n, k, fPPM, cPPM, m); check(n, k, fPPM, cPPM, m) != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("invalid input accepted: %v", err)
			}
			return
		}
		checkAgainstRef(t, n, k, fPPM, cPPM, m)
	})
}

// TestExactAtLargeScale checks, on jobs too big for the brute force, that
// s meets the policy and s − 1 does not, deciding both exactly.
func TestExactAtLargeScale(t *testing.T) {
	for _, c := range [][4]int64{
		{10_000, 1, 10_000, 990_000}, {1 << 30, 1, 20, 990_000}, {1 << 40, 1 << 10, 5000, 999_999},
		{123_456_789, 3, 777, 900_000}, {1 << 40, 1, 14, 999_999},
	} {
		n, k, f, cp := c[0], c[1], c[2], c[3]
		s, err := SampleCount(n, k, f, cp, Clustered)
		if err != nil {
			t.Fatal(err)
		}
		N, B := Segments(n, k), BadSegments(n, k, f)
		if min(s, B) > 5000 {
			t.Logf("n=%d k=%d f=%d c=%d: s=%d (too large to multiply out here)", n, k, f, cp, s)
			continue
		}
		if !clusteredMissAtMost(N, B, s, cp) || s > 1 && clusteredMissAtMost(N, B, s-1, cp) {
			t.Fatalf("n=%d k=%d f=%d c=%d: s=%d is not the least count", n, k, f, cp, s)
		}
		t.Logf("n=%d k=%d f=%d c=%d: N=%d B=%d s=%d, P(detect)=%.7f", n, k, f, cp, N, B, s, DetectionProbability(n, k, s, B))
	}
}

func TestMonotone(t *testing.T) {
	for _, m := range []Model{Clustered, Independent} {
		for _, k := range []int64{1, 3, 16} {
			prev := int64(0)
			for c := int64(100_000); c < PPM; c += 50_000 {
				s, err := SampleCount(5000, k, 20_000, c, m)
				if err != nil || s < prev {
					t.Fatalf("%v k=%d: s(c=%d) = %d, %v after %d", m, k, c, s, err, prev)
				}
				prev = s
			}
			prev = math.MaxInt64
			for f := int64(1000); f <= PPM; f += 37_000 {
				s, err := SampleCount(5000, k, f, 990_000, m)
				if err != nil || s > prev {
					t.Fatalf("%v k=%d: s(f=%d) = %d, %v after %d", m, k, f, s, err, prev)
				}
				prev = s
			}
		}
	}
}

func TestDetectionProbability(t *testing.T) {
	for _, c := range []struct {
		n, k, s, B int64
		want       float64
	}{
		{100, 1, 99, 1, 0.99},
		{100, 1, 100, 1, 1},
		{100, 1, 0, 1, 0},
		{100, 1, 1, 0, 0},
		{100, 1, 10, 10, 1 - 0.330476211}, // C(90,10)/C(100,10)
		{100, 1, 91, 10, 1},
		{100, 1, 101, 1, 0}, // invalid
		{0, 1, 1, 1, 0},
	} {
		if got := DetectionProbability(c.n, c.k, c.s, c.B); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("DetectionProbability(%d, %d, %d, %d) = %.10f, want %.10f", c.n, c.k, c.s, c.B, got, c.want)
		}
	}
	// Confidence agrees with the exact rationals.
	for _, m := range []Model{Clustered, Independent} {
		for _, k := range []int64{1, 3, 7} {
			for _, s := range []int64{1, 5, 20} {
				if s > Segments(60, k) {
					continue
				}
				exact, _ := new(big.Rat).Sub(big.NewRat(1, 1), refMiss(60, k, s, 30_000, m)).Float64()
				if got := Confidence(60, k, s, 30_000, m); math.Abs(got-exact) > 1e-12 {
					t.Errorf("Confidence(60, %d, %d, %v) = %v, want %v", k, s, m, got, exact)
				}
			}
		}
	}
}

func TestModelText(t *testing.T) {
	for _, m := range []Model{Clustered, Independent} {
		b, err := m.MarshalText()
		var back Model
		if err != nil || back.UnmarshalText(b) != nil || back != m {
			t.Fatalf("%v does not round-trip: %s, %v", m, b, err)
		}
	}
	if _, err := ParseModel("adaptive"); !errors.Is(err, ErrInvalid) {
		t.Fatal("ParseModel accepted an unknown model")
	}
	if _, err := Model(7).MarshalText(); err == nil {
		t.Fatal("MarshalText accepted an unknown model")
	}
}
