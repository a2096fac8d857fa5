package plan

import (
	"fmt"
	"math"
	"math/bits"
)

// Bond returns the least bond b (micro-USD) that makes cheating a strictly
// losing bet for a solver that gains gainMicroUSD by cheating and is caught
// with probability at least detectPPM/10^6:
//
//	(1 − p)·G − p·b < 0  ⟺  b > G·(1 − p)/p,  so  b = ⌊G·(10^6 − p)/p⌋ + 1.
//
// Pass the policy's confidence_ppm as detectPPM: SampleCount guarantees
// P(detect) ≥ c, and the bound G·(1−p)/p falls as p grows, so the bond
// sized at c deters every cheater the policy covers. The arithmetic is
// exact (128-bit product). Errors: ErrInvalid for G < 0 or p outside
// [1, 10^6]; ErrOverflow when b does not fit in an int64. See doc.go,
// "Deterrence", for why G is the right stake and how the forfeited payment
// adds to it.
func Bond(gainMicroUSD, detectPPM int64) (int64, error) {
	if gainMicroUSD < 0 || detectPPM < 1 || detectPPM > PPM {
		return 0, fmt.Errorf("%w: gain %d micro-USD, detection %d ppm", ErrInvalid, gainMicroUSD, detectPPM)
	}
	hi, lo := bits.Mul64(uint64(gainMicroUSD), uint64(PPM-detectPPM))
	if hi >= uint64(detectPPM) {
		return 0, fmt.Errorf("%w: bond for gain %d micro-USD at %d ppm", ErrOverflow, gainMicroUSD, detectPPM)
	}
	q, _ := bits.Div64(hi, lo, uint64(detectPPM))
	if q >= math.MaxInt64 {
		return 0, fmt.Errorf("%w: bond for gain %d micro-USD at %d ppm", ErrOverflow, gainMicroUSD, detectPPM)
	}
	return int64(q) + 1, nil
}
