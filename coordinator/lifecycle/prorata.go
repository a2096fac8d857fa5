package lifecycle

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// ProRata splits totalMicroUSD in proportion to weights (for a resumed
// job: the steps each solver committed) by the largest-remainder method:
//
//   - share i starts as floor(total × weights[i] / Σweights), computed
//     exactly in 128 bits, so no product overflows;
//   - the micro-dollars left over (fewer than the number of
//     weights) go one each to the shares with the largest remainders, ties
//     to the lower index (the earlier solver).
//
// The shares sum to exactly totalMicroUSD, each is the floor or the
// ceiling of its exact proportional share, and a zero weight gets zero. It
// fails with ErrInvalidSplit if the total or a weight is negative, no
// weight is positive, or the weights' sum overflows an int64.
func ProRata(totalMicroUSD int64, weights []int64) ([]int64, error) {
	if totalMicroUSD < 0 {
		return nil, fmt.Errorf("%w: negative total %d", ErrInvalidSplit, totalMicroUSD)
	}
	var sum int64
	for i, w := range weights {
		if w < 0 {
			return nil, fmt.Errorf("%w: weight %d is negative", ErrInvalidSplit, i)
		}
		if sum > math.MaxInt64-w {
			return nil, fmt.Errorf("%w: weights overflow", ErrInvalidSplit)
		}
		sum += w
	}
	if sum == 0 {
		return nil, fmt.Errorf("%w: no positive weight", ErrInvalidSplit)
	}
	shares := make([]int64, len(weights))
	rems := make([]uint64, len(weights))
	var given int64
	for i, w := range weights {
		hi, lo := bits.Mul64(uint64(totalMicroUSD), uint64(w))
		// total × w / sum ≤ total < 2^63, so the quotient fits and hi < sum
		// (Div64's precondition) holds.
		q, r := bits.Div64(hi, lo, uint64(sum))
		shares[i], rems[i] = int64(q), r
		given += int64(q)
	}
	// Σ rems = (total - given) × sum and each rem < sum, so at least
	// total - given shares have a positive remainder.
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rems[b], rems[a]) })
	for _, i := range order[:totalMicroUSD-given] {
		shares[i]++
	}
	return shares, nil
}
