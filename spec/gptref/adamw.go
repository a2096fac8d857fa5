package gptref

import (
	"math/bits"
)

// The update of SPEC.md §20.14 (AdamW after global-norm clipping).

// meanGrad is step 1 of §20.14: the mean loss's gradient with 30
// fractional bits, h = RoundDiv(Clamp(ShiftRound(G, e + 30), −2^62, 2^62), N).
func (m *dims) meanGrad(g, e int64) int64 {
	return roundDiv(clampAt(siteAdamMean, shiftRound(g, e+momentFrac), -1<<62, 1<<62), int64(m.n))
}

// gradNorm: step 2 of §20.14, ν = Isqrt(min(Σ t², 2^63 − 1)) over every
// value of every parameter, t = Clamp(RoundShift(h, 15), −2^31, 2^31), the
// sum saturating at 2^64 − 1. Inputs: grad.P, grad.P.exp for each P.
func (m *dims) gradNorm(_ int64, in [][]int64, _ *arith) [][]int64 {
	var sum uint64
	for k := 0; k < len(in); k += 2 {
		e := in[k+1][0]
		for _, g := range in[k] {
			t := clampAt(siteAdamNormT, roundShift(m.meanGrad(g, e), 15), -1<<31, 1<<31)
			s, carry := bits.Add64(sum, uint64(t*t), 0)
			if carry != 0 {
				s = 1<<64 - 1
			}
			sum = s
		}
	}
	return [][]int64{{isqrt(int64(min(sum, maxI64)))}}
}

// adamw: steps 2–3 of §20.14 for one parameter. Inputs: P, P.m, P.v,
// grad.P, grad.P.exp, adamw.norm.
func (m *dims) adamw(t int64, in [][]int64, _ *arith) [][]int64 {
	w, mom, v, g, e, nu := in[0], in[1], in[2], in[3], in[4][0], in[5][0]
	c := &m.cfg
	n1, s1 := c.Beta1.Num, int64(c.Beta1.Shift)
	n2, s2 := c.Beta2.Num, int64(c.Beta2.Shift)
	nl, sl := c.WeightDecay.Num, int64(c.WeightDecay.Shift)
	lr := learningRate(c.LR, t)
	w2, m2, v2 := make([]int64, len(w)), make([]int64, len(w)), make([]int64, len(w))
	for i := range w {
		h := m.meanGrad(g[i], e)
		if nu > 1<<15 {
			h = roundDiv(clampAt(siteAdamClipIn, h, -1<<46, 1<<46)<<15, nu)
		}
		h = clampAt(siteAdamH, h, -maxI32, maxI32)
		m2[i] = roundShift(n1*mom[i]+(int64(1)<<s1-n1)*h, s1)
		v2[i] = roundShift(n2*v[i]+(int64(1)<<s2-n2)*roundShift(h*h, 16), s2)
		mu := clampAt(siteAdamMu, roundDiv(m2[i]<<16, isqrt(v2[i])+c.Eps), -maxI32, maxI32)
		w2[i] = clampAt(siteAdamW, w[i]-roundShift(lr*(mu+roundShift(nl*w[i], sl)), int64(c.LRShift)), -maxI32, maxI32)
	}
	return [][]int64{w2, m2, v2}
}
