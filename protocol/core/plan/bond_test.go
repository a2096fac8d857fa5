package plan

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestBondTable(t *testing.T) {
	for _, c := range []struct {
		gain, p, want int64
		err           error
	}{
		{1_000_000, 990_000, 10_102, nil}, // ⌊10^6·10^4/990000⌋ + 1 = ⌊10101.01⌋ + 1
		{990_000, 990_000, 10_001, nil},   // exactly 10^4 is not enough: strict
		{1_000_000, 500_000, 1_000_001, nil},
		{0, 990_000, 1, nil},
		{123, PPM, 1, nil},
		{7, 1, 6_999_994, nil},
		{math.MaxInt64, PPM, 1, nil},
		{math.MaxInt64, 500_000, 0, ErrOverflow}, // G + 1
		{math.MaxInt64 / 2, 500_000, math.MaxInt64/2 + 1, nil},
		{math.MaxInt64, 1, 0, ErrOverflow},
		{-1, 990_000, 0, ErrInvalid},
		{1, 0, 0, ErrInvalid},
		{1, PPM + 1, 0, ErrInvalid},
	} {
		got, err := Bond(c.gain, c.p)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("Bond(%d, %d) = %d, %v; want %d, %v", c.gain, c.p, got, err, c.want, c.err)
		}
	}
}

// TestBondIsLeast checks p·b > G·(1−p) ≥ p·(b−1) exactly.
func TestBondIsLeast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		g := r.Int64N(1 << 42) // up to $4.4M: no overflow even at p = 1 ppm
		p := 1 + r.Int64N(PPM)
		b, err := Bond(g, p)
		if err != nil {
			t.Fatal(err)
		}
		lhs := new(big.Int).Mul(big.NewInt(p), big.NewInt(b))
		rhs := new(big.Int).Mul(big.NewInt(g), big.NewInt(PPM-p))
		prev := new(big.Int).Mul(big.NewInt(p), big.NewInt(b-1))
		if lhs.Cmp(rhs) <= 0 || prev.Cmp(rhs) > 0 {
			t.Fatalf("Bond(%d, %d) = %d is not the least bond with p·b > G·(1−p)", g, p, b)
		}
	}
}
