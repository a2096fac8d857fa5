package market

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestRoundingNeverCreatesMoney: for random prices p ≤ P, sizes and
// fractions, the escrow at P (rounded up) covers the payment at p
// (rounded down), each is within one micro-dollar of the exact amount on
// its side, and so escrow − payment, which goes back to the client, is
// never negative: rounding moves at most a micro-dollar to the payer and
// never creates one.
func TestRoundingNeverCreatesMoney(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 20_000 {
		P := 1 + r.Int64N(1<<uint(1+r.IntN(40)))
		p := 1 + r.Int64N(P)
		cu := 1 + r.Int64N(1<<uint(1+r.IntN(30)))
		den := 1 + r.Int64N(1<<20)
		num := r.Int64N(den*4 + 1)
		up, err1 := AmountMicroUSD(P, cu, num, den, Up)
		down, err2 := AmountMicroUSD(p, cu, num, den, Down)
		if err1 != nil || err2 != nil {
			continue // overflow: refused, nothing moves
		}
		exact := func(price int64) *big.Rat {
			x := new(big.Int).Mul(big.NewInt(price), big.NewInt(cu))
			x.Mul(x, big.NewInt(num))
			return new(big.Rat).SetFrac(x, new(big.Int).Mul(big.NewInt(den), big.NewInt(NanoPerMicro)))
		}
		eUp, eDown := exact(P), exact(p)
		upR, downR := new(big.Rat).SetInt64(up), new(big.Rat).SetInt64(down)
		one := big.NewRat(1, 1)
		if upR.Cmp(eUp) < 0 || new(big.Rat).Sub(upR, eUp).Cmp(one) >= 0 {
			t.Fatalf("case %d: escrow %d for exact %s", i, up, eUp.FloatString(3))
		}
		if downR.Cmp(eDown) > 0 || new(big.Rat).Sub(eDown, downR).Cmp(one) >= 0 {
			t.Fatalf("case %d: pay %d for exact %s", i, down, eDown.FloatString(3))
		}
		if down > up {
			t.Fatalf("case %d: pay %d at %d exceeds escrow %d at %d", i, down, p, up, P)
		}
	}
}
