package tile

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/test"

	cfixed "github.com/beluga-compute/beluga/circuits/fixed"
	"github.com/beluga-compute/beluga/spec/fixed"
)

// scaleCircuit is the update's Scale by a variable right shift: it must
// equal spec/fixed.Scale(x, −s) for every x and every s in range.
type scaleCircuit struct {
	X, S, Want frontend.Variable
	SMin, SMax int `gnark:"-"`
}

func (c *scaleCircuit) Define(api frontend.API) error {
	pow, half := shiftPower(api, c.S, c.SMin, c.SMax)
	const b = 62
	q := varRoundShift(api, c.X, c.S, pow, half, c.SMin, c.SMax, b)
	api.AssertIsEqual(cfixed.Sat32(api, q, b-c.SMin+1), c.Want)
	return nil
}

func checkScale(t *testing.T, x int64, s, sMin, sMax int) {
	t.Helper()
	shape := &scaleCircuit{SMin: sMin, SMax: sMax}
	want := fixed.Scale(x, -s)
	ok := &scaleCircuit{X: x, S: s, Want: want, SMin: sMin, SMax: sMax}
	inRange := s >= sMin && s <= sMax
	err := test.IsSolved(shape, ok, ecc.BN254.ScalarField())
	if inRange && err != nil {
		t.Fatalf("Scale(%d, −%d) = %d: the circuit disagrees: %v", x, s, want, err)
	}
	if !inRange && err == nil {
		t.Fatalf("shift %d outside [%d, %d] accepted", s, sMin, sMax)
	}
	if inRange {
		off := &scaleCircuit{X: x, S: s, Want: int64(want) + 1, SMin: sMin, SMax: sMax}
		if test.IsSolved(shape, off, ecc.BN254.ScalarField()) == nil {
			t.Fatalf("Scale(%d, −%d): an off-by-one result accepted", x, s)
		}
	}
}

func TestVariableScaleMatchesSpec(t *testing.T) {
	t.Parallel()
	for _, x := range []int64{0, 1, -1, 3, -3, 1 << 40, -(1 << 40), 1<<61 - 1, -(1 << 61), 12345678901, -98765432109} {
		for s := 1; s <= 45; s += 4 {
			checkScale(t, x, s, 1, 45)
		}
	}
	checkScale(t, 1<<50, 46, 1, 45) // above the range
	checkScale(t, 1<<50, 2, 3, 45)  // below the range
	checkScale(t, -7, 3, 3, 3)      // a one-value range
}

func FuzzVariableScale(f *testing.F) {
	f.Add(int64(1)<<33+5, uint8(20))
	f.Add(int64(-1)<<40-1, uint8(1))
	f.Add(int64(2), uint8(2))
	f.Fuzz(func(t *testing.T, x int64, s uint8) {
		x >>= 2 // |x| < 2^61: the circuit's bound on d·LR
		checkScale(t, x, int(s%62)+1, 3, 43)
	})
}
