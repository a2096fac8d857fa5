package gptref

import (
	"math/bits"

	"github.com/beluga-compute/beluga/spec/gpt"
)

// learningRate is LR(t) of SPEC.md §8.6 from the knots (s_i, v_i): linear
// between knots with the floor toward the earlier knot's value, v_last
// from the last knot on. Knots are validated (the first at step 0,
// increasing steps), so some knot has s_i ≤ t for t ≥ 0.
func learningRate(knots []gpt.LRPoint, t int64) int64 {
	for i := len(knots) - 1; i >= 0; i-- {
		k := knots[i]
		if t < k.Step {
			continue
		}
		if i == len(knots)-1 {
			return k.Value
		}
		nx := knots[i+1]
		if nx.Value >= k.Value {
			return k.Value + mulDiv(nx.Value-k.Value, t-k.Step, nx.Step-k.Step)
		}
		return k.Value - mulDiv(k.Value-nx.Value, t-k.Step, nx.Step-k.Step)
	}
	return knots[0].Value
}

// mulDiv is ⌊a·b / c⌋ for 0 ≤ a, 0 ≤ b < c, exact in 128 bits: the product
// of a value difference (< 2^30) and a step offset (< 2^40) can leave int64.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, _ := bits.Div64(hi, lo, uint64(c)) // hi < c because b < c
	return int64(q)
}
