package gpt

import (
	"math/big"
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
		if got, want := sigmoidBranchless(u), sigmoidQ15(u); got != want {
			t.Fatalf("sigmoidBranchless(%d) = %d, want %d", u, got, want)
		}
		if z := int64(s.At(i) >> 31); exp2NegQ15(z) != fixed.Exp2NegQ15(z) {
			t.Fatalf("exp2NegQ15(%d) differs", z)
		}
	}
	for _, u := range []int64{0, 1, -1, 1 << 31, -(1 << 31), 1<<31 - 1} {
		if sigmoidBranchless(u) != sigmoidQ15(u) {
			t.Fatalf("sigmoidBranchless(%d) differs", u)
		}
	}
}

// TestFastArithmetic: isqrt, roundDiv and sigmoidBranchless equal the
// spec's definitions on edge and random values.
func TestFastArithmetic(t *testing.T) {
	t.Parallel()
	initTables()
	s := prng.Derive(2, "test.fast", 0, 0)
	check := func(x int64) {
		if got, want := isqrt(x), int64(fixed.Isqrt(uint64(x))); got != want {
			t.Fatalf("isqrt(%d) = %d, want %d", x, got, want)
		}
	}
	for _, x := range []int64{0, 1, 2, 3, 4, 15, 16, 17, 1<<52 - 1, 1 << 52, 1<<53 + 1, 1<<62 - 1} {
		check(x)
	}
	for i := range uint64(300000) {
		x := int64(s.At(i) >> (2 + i%40))
		check(x)
		if r := isqrt(x); r > 1 {
			check(r*r - 1)
			check(r * r)
		}
		a := int64(s.At(i+1<<40)) >> (i % 60)
		d := max(int64(s.At(i+1<<41)>>(1+i%62)), 1)
		if got, want := roundDiv(a, d), roundDivBig(a, d); got != want {
			t.Fatalf("roundDiv(%d, %d) = %d, want %d", a, d, got, want)
		}
		u := int64(s.At(i+1<<42)>>32) - 1<<31
		u >>= i % 32
		if got, want := sigmoidBranchless(u), sigmoidQ15(u); got != want {
			t.Fatalf("sigmoidBranchless(%d) = %d, want %d", u, got, want)
		}
	}
	for _, u := range []int64{0, 1, -1, 1 << 31, -(1 << 31), 1<<31 - 1, 47 << 16, -(48 << 16)} {
		if sigmoidBranchless(u) != sigmoidQ15(u) {
			t.Fatalf("sigmoidBranchless(%d) differs", u)
		}
	}
}

// roundDivBig is ⌊(2a + d) / (2d)⌋ in big integers.
func roundDivBig(a, d int64) int64 {
	n := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(a), 1), big.NewInt(d))
	q := new(big.Int).Div(n, new(big.Int).Lsh(big.NewInt(d), 1)) // Euclidean: floor for a positive divisor
	return q.Int64()
}

func BenchmarkSigmoid(b *testing.B) {
	initTables()
	s := prng.Derive(5, "bench.sig", 0, 0)
	us := make([]int64, 1<<20)
	for i := range us {
		us[i] = (int64(s.At(uint64(i))>>32) - 1<<31) >> 13 // |x| up to ~16
	}
	b.Run("tables", func(b *testing.B) {
		var acc int64
		for b.Loop() {
			for _, u := range us {
				acc += sigmoidBranchless(u)
			}
		}
		_ = acc
	})
}

// TestDivider: the softmax's multiply-and-correct division equals floor
// division over its whole domain's edges and random values.
func TestDivider(t *testing.T) {
	t.Parallel()
	s := prng.Derive(6, "test.divider", 0, 0)
	check := func(n, d int64) {
		if got, want := newDivider(d).div(n), n/d; got != want {
			t.Fatalf("⌊%d / %d⌋ = %d, want %d", n, d, got, want)
		}
	}
	for _, d := range []int64{1 << 15, 1<<15 + 1, 3 << 20, 1<<28 - 1, 1<<35 - 1} {
		for _, n := range []int64{0, 1, d - 1, d, d + 1, 2*d - 1, 1<<29 - 1, 1<<35 - 1} {
			check(n, d)
		}
	}
	for i := range uint64(500000) {
		d := 1<<15 + int64(s.At(2*i)%(1<<(16+i%20)))
		n := int64(s.At(2*i+1) % (1 << (20 + i%15)))
		check(n, d)
		check(n/d*d, d)
		check(n/d*d-1+d, d)
	}
}

// TestRounder: RoundDiv by a fixed divisor through its reciprocal equals
// RoundDiv for |a| < 2^61 and every divisor size.
func TestRounder(t *testing.T) {
	t.Parallel()
	s := prng.Derive(7, "test.rounder", 0, 0)
	check := func(a, d int64) {
		if got, want := newRounder(d).roundDiv(a), roundDivBig(a, d); got != want {
			t.Fatalf("RoundDiv(%d, %d) = %d, want %d", a, d, got, want)
		}
	}
	for _, d := range []int64{1, 2, 3, 7, 1 << 20, 1<<24 - 1, 1<<40 + 3, 1<<60 - 1} {
		for _, a := range []int64{0, 1, -1, d / 2, -d / 2, d, -d, 1<<61 - 1, -(1<<61 - 1), (d/2)*2 + 1} {
			check(a, d)
		}
	}
	for i := range uint64(500000) {
		d := max(int64(s.At(2*i)>>(3+i%60)), 1)
		a := int64(s.At(2*i+1)) >> (3 + i%61)
		check(a, d)
		check(-a, d)
	}
}
