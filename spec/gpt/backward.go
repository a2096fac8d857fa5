package gpt

import (
	"github.com/beluga-compute/beluga/spec/kernel"
)

// backward computes every parameter's gradient of the summed loss into
// t.grd (exponent t.ge) from the activations forward saved.
func (t *Trainer) backward(tokens []byte) {
	c, n, d := &t.c, t.n, t.c.Dim
	b := c.Bits
	qN := t.tmp.qN
	acc, acc2 := t.tmp.acc, t.tmp.acc2
	// Loss → head → final norm.
	eg := Norm32(qN[:n*Vocab], t.g, -ProbBits, b)
	dy := acc[:n*d]
	t.linearBwd(t.pHead(), qN, eg, t.fin.yq, t.fin.ye, dy)
	dx := t.tmp.dx
	t.tmp.dxe = t.rmsnormBwd(&t.fin, dy, eg+t.we[t.pHead()], dx)
	for l := c.Layers - 1; l >= 0; l-- {
		a := &t.layers[l]
		// MLP: down, SiLU, up, norm.
		edm := t.norm(qN[:n*d], dx, t.tmp.dxe, b)
		dh := acc[:n*c.FF]
		t.linearBwd(pDown(l), qN, edm, a.h, a.eh, dh)
		edh := edm + t.we[pDown(l)]
		du := acc2[:n*c.FF]
		t.parallelRows(n, func(lo, hi int) {
			for i := lo * c.FF; i < hi*c.FF; i++ {
				du[i] = dh[i] * siluGradQ15(int64(a.u[i]), int64(a.sig[i]))
			}
		})
		edu := t.norm(qN[:n*c.FF], du, edh-15, b)
		dy2 := acc[:n*d]
		t.linearBwd(pUp(l), qN, edu, a.n2.yq, a.n2.ye, dy2)
		dn := acc2[:n*d]
		en := t.rmsnormBwd(&a.n2, dy2, edu+t.we[pUp(l)], dn)
		t.tmp.dxe = t.add(dx, t.tmp.dxe, dn, en)
		// Attention: out projection, attention, qkv, norm.
		edo := t.norm(qN[:n*d], dx, t.tmp.dxe, b)
		dO := acc[:n*d]
		t.linearBwd(pOut(l), qN, edo, a.o, a.eo, dO)
		dOq := t.tmp.tN[:n*d+1] // held across attention's backward
		edOq := t.norm(dOq[:n*d], dO, edo+t.we[pOut(l)], b)
		dqkv := acc2[:n*3*d]
		eQ, eK, eV := t.attentionBwd(a, dOq, edOq, dqkv)
		eqkv := t.normParts(qN[:n*3*d], dqkv, 3*d, []part{{0, d, eQ}, {d, d, eK}, {2 * d, d, eV}})
		dy1 := acc[:n*d]
		t.linearBwd(pQKV(l), qN, eqkv, a.n1.yq, a.n1.ye, dy1)
		dn = acc2[:n*d]
		en = t.rmsnormBwd(&a.n1, dy1, eqkv+t.we[pQKV(l)], dn)
		t.tmp.dxe = t.add(dx, t.tmp.dxe, dn, en)
	}
	// Embeddings: dTok[v] = Σ over positions holding token v, dPos[i] = Σ over sequences.
	gt, gp := t.grd[pTok()], t.grd[pPos()]
	clear(gt)
	clear(gp)
	t.parallelRows(d, func(lo, hi int) {
		for r := range n {
			row := dx[r*d : r*d+d]
			tr := gt[int(tokens[r])*d:]
			pr := gp[(r%c.Context)*d:]
			for i := lo; i < hi; i++ {
				tr[i] += row[i]
				pr[i] += row[i]
			}
		}
	})
	t.ge[pTok()], t.ge[pPos()] = t.tmp.dxe, t.tmp.dxe
}

// linearBwd computes, for the product y = x·Wᵀ of parameter p with the
// quantised output gradient (dyq, edy) [N, out] and input xq [N, in] whose
// row r has exponent ex[r], dW = dyqᵀ·x' into t.grd[p] and dx = dyq·Wq into
// dx [N, in] (exponent edy + we[p]). x' is x aligned to its largest row
// exponent E (row r: RoundShift(xq_r, E − ex[r])), so dW has exponent
// edy + E.
func (t *Trainer) linearBwd(p int, dyq []int16, edy int, xq []int16, ex []int, dx []int64) {
	pr := t.params[p]
	n, om := t.n, t.opMax()
	dyT := t.tmp.tN
	transpose16(dyT, n, dyq, pr.Rows, n, pr.Rows)
	e := ex[0]
	for _, v := range ex[1:] {
		e = max(e, v)
	}
	xa := t.tmp.xa[:n*pr.In]
	t.parallelRows(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			sh := e - ex[r]
			src, dst := xq[r*pr.In:(r+1)*pr.In], xa[r*pr.In:(r+1)*pr.In]
			if sh == 0 {
				copy(dst, src)
				continue
			}
			for i, v := range src {
				dst[i] = int16(roundShift(int64(v), sh))
			}
		}
	})
	xp := t.pack()
	kernel.PackB(xp, xa, n, pr.In, pr.In)
	t.mm.mul(t.grd[p], pr.In, dyT, n, xp, pr.Rows, om, om, false)
	t.unpack(xp)
	t.ge[p] = edy + e
	t.mm.mul(dx, pr.In, dyq, pr.Rows, t.wB[p], n, om, om, false)
}

// rmsnormBwd computes the input gradient of RMSNorm (SPEC.md) from the
// output gradient (dy, e), which it normalises in place to GradBits:
// per row c = Σ q·y, c̄ = RoundDiv(c, D·2^ActFrac), t_i = q_i −
// RoundShift(y_i·c̄, ActFrac), dx_i = RoundDiv(t_i·2^(24 − s_r + s_min), ρ)
// (0 when ρ = 0), exponent e' − s_min + ActFrac − 24, s_min the smallest
// row prescale.
func (t *Trainer) rmsnormBwd(na *normActs, dy []int64, e int, dx []int64) int {
	d := t.c.Dim
	e = t.normWide(dy, dy, e)
	smin := na.s[0]
	for _, v := range na.s[1:] {
		smin = min(smin, v)
	}
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			q, y, o := dy[r*d:r*d+d], na.y[r*d:r*d+d], dx[r*d:r*d+d]
			rr := na.r[r]
			if rr == 0 {
				clear(o)
				continue
			}
			var cs int64
			for i, v := range q {
				cs += v * int64(y[i])
			}
			cbar := roundDiv(cs, int64(d)<<ActFrac)
			k := 24 - na.s[r] + smin
			dv := newRounder(rr)
			for i, v := range q {
				ti := v - roundShift(int64(y[i])*cbar, ActFrac)
				o[i] = dv.roundDiv(ti << k)
			}
		}
	})
	return e - smin + ActFrac - 24
}

// add sets (x, ex) to the sum of (x, ex) and (v, ev), both rounded to the
// exponent E = max(ex + BitLen(max|x|), ev + BitLen(max|v|)) − GradBits,
// and returns E.
func (t *Trainer) add(x []int64, ex int, v []int64, ev int) int {
	mx, mv := t.pmaxAbs(x), t.pmaxAbs(v)
	var top int
	switch {
	case mx == 0 && mv == 0:
		return ex
	case mx == 0:
		top = ev + bitLen(int64(mv))
	case mv == 0:
		top = ex + bitLen(int64(mx))
	default:
		top = max(ev+bitLen(int64(mv)), ex+bitLen(int64(mx)))
	}
	e := top - GradBits
	t.parallelRows(len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x[i] = shiftRound(x[i], ex-e) + shiftRound(v[i], ev-e)
		}
	})
	return e
}

// part is a block of columns [c0, c0+w) with its own exponent.
type part struct{ c0, w, e int }

// normParts quantises the [N, ld] tensor whose column blocks have their
// own exponents to Bits bits at one exponent E = max over non-zero blocks
// of (e + BitLen(max|block|)) − Bits, and returns E.
func (t *Trainer) normParts(dst []int16, v []int64, ld int, parts []part) int {
	b := t.c.Bits
	lim := int64(1)<<b - 1
	top, any := 0, false
	for _, p := range parts {
		var m uint64
		for r := range t.n {
			m = max(m, maxAbs64(v[r*ld+p.c0:r*ld+p.c0+p.w]))
		}
		if m == 0 {
			continue
		}
		if tp := p.e + bitLen(int64(m)); !any || tp > top {
			top, any = tp, true
		}
	}
	if !any {
		clear(dst)
		return parts[0].e
	}
	e := top - b
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			for _, p := range parts {
				for i := p.c0; i < p.c0+p.w; i++ {
					dst[r*ld+i] = int16(clamp(shiftRound(v[r*ld+i], p.e-e), -lim, lim))
				}
			}
		}
	})
	return e
}

// siluGradQ15 is SiLU's derivative at u (ActFrac) in Q15, given
// s = σ(u): RoundShift(s·(2^15 + RoundShift(u·(2^15 − s), ActFrac)), 15).
func siluGradQ15(u, s int64) int64 {
	return roundShift(s*(1<<15+roundShift(u*(1<<15-s), ActFrac)), 15)
}

// attentionBwd computes the gradients of Q, K and V into dqkv [N, 3D]
// (their column blocks) from the quantised gradient (dOq, edo) of the
// attention output, and returns their exponents. The rows of Q, K and V
// have their own exponents; where a product sums over rows of one of them,
// its factor is aligned to that tensor's largest row exponent first.
func (t *Trainer) attentionBwd(a *layerActs, dOq []int16, edo int, dqkv []int64) (eQ, eK, eV int) {
	c := &t.c
	T, d, dh, b := c.Context, c.Dim, c.HeadDim(), c.Bits
	om, pm := t.opMax(), int64(1)<<b
	inv := attnInvSqrt(dh)
	ds := t.tmp.ds
	gq, gk, gv := maxInt(a.eq), maxInt(a.ek), maxInt(a.ev)
	t.parallel(c.Batch*c.Heads, func(task int) {
		bi, h := task/c.Heads, task%c.Heads
		base := bi*T*d + h*dh
		r0 := bi * T
		pk := t.pack()
		defer t.unpack(pk)
		sc := t.scratch()
		defer t.tmp.scratch.Put(sc)
		dp := sc.i64a
		kernel.PackBTransposed(pk, a.v[base:], dh, T, d)
		t.mm.mulRows(dp, T, dOq[base:], d, pk, T, om, om, false)
		p := a.p[task*T*T:]
		pt := sc.i16a
		transpose16(pt, T, p, T, T, T)
		kernel.PackB(pk, dOq[base:], T, dh, d)
		t.mm.mulRows(dqkv[r0*3*d+2*d+h*dh:], 3*d, pt, T, pk, T, pm, om, false)
		out := ds[task*T*T : (task+1)*T*T]
		ev := a.ev[r0 : r0+T]
		for i := range T {
			pr, dr, or := p[i*T:i*T+i+1], dp[i*T:i*T+i+1], out[i*T:(i+1)*T]
			var delta int64
			for j, v := range pr {
				dr[j] = roundShift(dr[j], gv-ev[j]) // dP at exponent edo + gv
				delta += int64(v) * dr[j]
			}
			for j, v := range pr {
				or[j] = roundShift(int64(v)*(dr[j]<<b-delta), 16) * inv
			}
			clear(or[i+1:])
		}
	})
	eds := t.norm(t.tmp.dsq[:len(ds)], ds, edo+gv-2*b, b)
	t.parallel(c.Batch*c.Heads, func(task int) {
		bi, h := task/c.Heads, task%c.Heads
		base := bi*T*d + h*dh
		r0 := bi * T
		pk := t.pack()
		defer t.unpack(pk)
		sc := t.scratch()
		defer t.tmp.scratch.Put(sc)
		dsq := t.tmp.dsq[task*T*T : (task+1)*T*T]
		ek, eq := a.ek[r0:r0+T], a.eq[r0:r0+T]
		// dQ_i = Σ_j dS_ij·K_j: column j aligned by gk − ek[j].
		al := sc.i16a
		for i := range T {
			for j := range T {
				al[i*T+j] = int16(roundShift(int64(dsq[i*T+j]), gk-ek[j]))
			}
		}
		kernel.PackB(pk, a.k[base:], T, dh, d)
		t.mm.mulRows(dqkv[r0*3*d+h*dh:], 3*d, al, T, pk, T, om, om, false)
		// dK_j = Σ_i dS_ij·Q_i: row i aligned by gq − eq[i], transposed.
		for i := range T {
			sh := gq - eq[i]
			for j := range T {
				al[j*T+i] = int16(roundShift(int64(dsq[i*T+j]), sh))
			}
		}
		kernel.PackB(pk, a.q[base:], T, dh, d)
		t.mm.mulRows(dqkv[r0*3*d+d+h*dh:], 3*d, al, T, pk, T, om, om, false)
	})
	return eds + gk, eds + gq, -b + edo
}

func maxInt(x []int) int {
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	return m
}
