package gpt

import (
	"math"
	"math/bits"
	"sync"

	"github.com/beluga-compute/beluga/spec/fixed"
)

// update applies SPEC.md's integer AdamW to st with the gradients in t.grd
// and returns the gradient norm before clipping (Q15).
//
// For every value: h = RoundDiv(ShiftRound(G, e + MomentFrac), N), the
// mean-loss gradient in MomentFrac (clamped to ±2^62 first). The norm is
// Isqrt of the saturating sum of Clamp(RoundShift(h, 15), ±2^31)²; if it
// exceeds 2^15 (1.0), h = RoundDiv(Clamp(h, ±2^46)·2^15, norm). Then h is
// clamped to ±(2^31 − 1) and
//
//	m = RoundShift(β1n·m + (2^β1s − β1n)·h, β1s)
//	v = RoundShift(β2n·v + (2^β2s − β2n)·RoundShift(h², 2·MomentFrac − VarFrac), β2s)
//	u = Clamp(RoundDiv(m·2^(MasterFrac − MomentFrac + VarFrac/2), Isqrt(v) + ε), ±(2^31 − 1))
//	w = Clamp(w − RoundShift(LR(t)·(u + RoundShift(λn·w, λs)), lr_shift), ±(2^31 − 1))
func (t *Trainer) update(st *State) int64 {
	c := &t.c
	n := int64(t.n)
	// Mean-loss gradients in MomentFrac, in place.
	pow2 := -1 // log2 N when N is a power of two
	if n&(n-1) == 0 {
		pow2 = bits.TrailingZeros64(uint64(n))
	}
	var mu sync.Mutex
	var sumsq uint64
	t.parallel(len(t.params), func(p int) {
		g := t.grd[p]
		k := t.ge[p] + MomentFrac
		var local uint64
		for i, v := range g {
			var h int64
			if pow2 >= 0 { // RoundDiv by 2^p is RoundShift by p
				h = roundShift(clamp(shiftRound(v, k), -1<<62, 1<<62), pow2)
			} else {
				h = roundDiv(clamp(shiftRound(v, k), -1<<62, 1<<62), n)
			}
			g[i] = h
			q := clamp(roundShift(h, 15), -1<<31, 1<<31)
			local = satAdd(local, uint64(q*q))
		}
		mu.Lock()
		sumsq = satAdd(sumsq, local)
		mu.Unlock()
	})
	if sumsq > math.MaxInt64 {
		sumsq = math.MaxInt64
	}
	norm := int64(fixed.Isqrt(sumsq))
	clip := norm > 1<<15
	lr := c.LRAt(st.Step)
	b1n, b1s, b2n, b2s := c.Beta1.Num, c.Beta1.Shift, c.Beta2.Num, c.Beta2.Shift
	wdn, wds := c.WeightDecay.Num, c.WeightDecay.Shift
	const uShift = MasterFrac - MomentFrac + VarFrac/2
	t.parallel(len(t.params), func(p int) {
		g, w, m, v := t.grd[p], st.W[p], st.M[p], st.V[p]
		for i, h := range g {
			if clip {
				h = roundDiv(clamp(h, -1<<46, 1<<46)<<15, norm)
			}
			h = clamp(h, -math.MaxInt32, math.MaxInt32)
			mi := roundShift(b1n*int64(m[i])+(int64(1)<<b1s-b1n)*h, b1s)
			vi := roundShift(b2n*v[i]+(int64(1)<<b2s-b2n)*roundShift(h*h, 2*MomentFrac-VarFrac), b2s)
			r := isqrt(vi) + c.Eps
			u := clamp(roundDiv(mi<<uShift, r), -math.MaxInt32, math.MaxInt32)
			wi := int64(w[i])
			d := u + roundShift(wdn*wi, wds)
			w[i] = int32(clamp(wi-roundShift(lr*d, c.LRShift), -math.MaxInt32, math.MaxInt32))
			m[i], v[i] = int32(mi), vi
		}
	})
	return norm
}

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}
