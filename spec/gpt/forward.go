package gpt

import (
	"math"

	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// Parameter indices in Params order.
func pTok() int               { return 0 }
func pPos() int               { return 1 }
func pQKV(l int) int          { return 2 + 4*l }
func pOut(l int) int          { return 3 + 4*l }
func pUp(l int) int           { return 4 + 4*l }
func pDown(l int) int         { return 5 + 4*l }
func (t *Trainer) pHead() int { return 2 + 4*t.c.Layers }

// forward runs SPEC.md's forward pass, saving what backward needs, and
// leaves the logits in t.logits, row r at exponent t.logitsE(r).
//
// Every activation that enters a product is normalised per row (per
// position), so a position's values depend on its own window's earlier
// positions only: the forward pass is causal and does not depend on the
// other windows of the batch.
func (t *Trainer) forward(tokens []byte) {
	if t.c.GPT2 {
		t.forwardGPT2(tokens)
		return
	}
	c, n, d, b := &t.c, t.n, t.c.Dim, t.c.Bits
	t.embed(tokens)
	for l := range c.Layers {
		a := &t.layers[l]
		// Attention.
		t.rmsnorm(&a.n1, t.x)
		qkv := t.tmp.acc[:n*3*d]
		t.linear(qkv, a.n1.yq, pQKV(l))
		wq := t.we[pQKV(l)]
		t.parallelRows(n, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row, e := qkv[r*3*d:(r+1)*3*d], a.n1.ye[r]+wq
				a.eq[r] = normRow(a.q[r*d:r*d+d], row[:d], e, b)
				a.ek[r] = normRow(a.k[r*d:r*d+d], row[d:2*d], e, b)
				a.ev[r] = normRow(a.v[r*d:r*d+d], row[2*d:], e, b)
			}
		})
		o := t.tmp.acc2[:n*d]
		t.attention(a, o)
		t.parallelRows(n, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				a.eo[r] = normRow(a.o[r*d:r*d+d], o[r*d:r*d+d], a.eo[r], b)
			}
		})
		proj := t.tmp.acc[:n*d]
		t.linear(proj, a.o, pOut(l))
		t.residual(proj, a.eo, t.we[pOut(l)])
		// MLP.
		t.rmsnorm(&a.n2, t.x)
		f := c.FF
		up := t.tmp.acc[:n*f]
		t.linear(up, a.n2.yq, pUp(l))
		wu := t.we[pUp(l)]
		hs := t.tmp.acc2[:n*f]
		t.parallelRows(n, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				k := a.n2.ye[r] + wu + ActFrac
				done := 0
				if k < 0 && k > -63 {
					done = siluVec(a.u[r*f:(r+1)*f], a.sig[r*f:(r+1)*f], hs[r*f:(r+1)*f], up[r*f:(r+1)*f], -k)
				}
				for i := r*f + done; i < (r+1)*f; i++ {
					var u int64
					if k < 0 && k > -63 {
						u = (up[i] + int64(1)<<(-k-1)) >> uint(-k)
						u = min(max(u, math.MinInt32), math.MaxInt32)
					} else {
						u = int64(sat32(shiftRound(up[i], k)))
					}
					sg := sigmoidBranchless(u)
					a.u[i], a.sig[i] = int32(u), uint16(sg)
					hs[i] = roundShift(u*sg, 15)
				}
				a.eh[r] = normRow(a.h[r*f:(r+1)*f], hs[r*f:(r+1)*f], -ActFrac, b)
			}
		})
		down := t.tmp.acc[:n*d]
		t.linear(down, a.h, pDown(l))
		t.residual(down, a.eh, t.we[pDown(l)])
	}
	t.rmsnorm(&t.fin, t.x)
	t.linear(t.logits, t.fin.yq, t.pHead())
}

// embed sets the residual stream to the embedding of tokens:
// x = Sat32(RoundShift(tok[token] + pos[i], MasterFrac − ActFrac)).
func (t *Trainer) embed(tokens []byte) {
	c, d := &t.c, t.c.Dim
	tok, pos := t.wqMaster(pTok()), t.wqMaster(pPos())
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			tr := tok[int(tokens[r])*d:][:d]
			pr := pos[(r%c.Context)*d:][:d]
			xr := t.x[r*d : r*d+d]
			for i := range xr {
				xr[i] = sat32(roundShift(int64(tr[i])+int64(pr[i]), MasterFrac-ActFrac))
			}
		}
	})
}

// logitsE is the exponent of row r of t.logits.
func (t *Trainer) logitsE(r int) int {
	if t.c.GPT2 {
		return t.fin.ye[r] + t.headE
	}
	return t.fin.ye[r] + t.we[t.pHead()]
}

// wqMaster returns an embedding's master weights, which the embedding
// reads unquantised.
func (t *Trainer) wqMaster(i int) []int32 { return t.master.W[i] }

// linear sets dst [N, out] to the exact product x · Wqᵀ: row r has the
// exponent of x's row r plus we[p].
func (t *Trainer) linear(dst []int64, x []int16, p int) {
	pr := t.params[p]
	om := t.opMax()
	t.mm.mul(dst, pr.Rows, x, pr.In, t.wT[p], t.n, om, om, false)
}

// residual adds v to the residual stream, row r at exponent e[r] + w:
// x = Sat32(x + ShiftRound(v, e[r] + w + ActFrac)).
func (t *Trainer) residual(v []int64, e []int, w int) {
	d := t.c.Dim
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			k := e[r] + w + ActFrac
			xr, vr := t.x[r*d:r*d+d], v[r*d:r*d+d]
			for i, x := range xr {
				xr[i] = sat32(int64(x) + shiftRound(vr[i], k))
			}
		}
	})
}

// normRow is Norm of one row (v, e) into dst; it returns the exponent.
func normRow(dst []int16, v []int64, e, b int) int {
	s := normShift(maxAbs64(v), b)
	quantize16(dst, v, s, b)
	return e + s
}

// normRow32 is normRow of an int32 row.
func normRow32(dst []int16, v []int32, e, b int) int {
	s := normShift(maxAbs32(v), b)
	quantize16From32(dst, v, s, b)
	return e + s
}

// rmsnorm is SPEC.md's RMSNorm of the residual stream x [N, D] (ActFrac),
// row by row: s = max(0, BitLen(max|x_row|) − 24), xs = RoundShift(x, s),
// ρ = Isqrt(⌊Σ xs² / D⌋), y = RoundDiv(xs·2^ActFrac, ρ) (0 when ρ = 0);
// then yq = Norm(y_row, −ActFrac, Bits).
func (t *Trainer) rmsnorm(na *normActs, x []int32) {
	d, b := t.c.Dim, t.c.Bits
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*d:r*d+d], na.y[r*d:r*d+d]
			s := max(0, bitLen(int64(maxAbs32(xr)))-24)
			na.s[r] = s
			var ss int64
			for _, v := range xr {
				xs := roundShift(int64(v), s)
				ss += xs * xs
			}
			rr := isqrt(ss / int64(d))
			na.r[r] = rr
			if rr == 0 {
				clear(yr)
			} else {
				dv := newRounder(rr)
				for i, v := range xr {
					yr[i] = int32(dv.roundDiv(roundShift(int64(v), s) << ActFrac))
				}
			}
			na.ye[r] = normRow32(na.yq[r*d:r*d+d], yr, -ActFrac, b)
		}
	})
}

// attention computes, per window and head, the causal softmax of
// Q·Kᵀ/√Dh and its product with V into o [N, D], setting a.eo[r] to the
// exponent of row r, and saves the probabilities. Rows of Q, K and V have
// their own exponents: row i's scores are aligned to the largest exponent
// of the keys it sees, and the probabilities that weigh each value row to
// the largest exponent of the values it sees, so row i depends on rows
// j ≤ i of its window only.
func (t *Trainer) attention(a *layerActs, o []int64) {
	c := &t.c
	T, d, dh, b := c.Context, c.Dim, c.HeadDim(), c.Bits
	kappa := attnKappa(dh)
	om := t.opMax()
	t.parallel(c.Batch*c.Heads, func(task int) {
		bi, h := task/c.Heads, task%c.Heads
		base := bi*T*d + h*dh
		r0 := bi * T
		kt := t.pack()
		defer t.unpack(kt)
		sc := t.scratch()
		defer t.tmp.scratch.Put(sc)
		s := sc.i64a
		kernel.PackBTransposed(kt, a.k[base:], dh, T, d)
		t.mm.mulRows(s, T, a.q[base:], d, kt, T, om, om, false)
		p := a.p[task*T*T : (task+1)*T*T]
		pa := sc.i16a
		ek, ev := a.ek[r0:r0+T], a.ev[r0:r0+T]
		emaxK, emaxV := ek[0], ev[0]
		for i := range T {
			emaxK, emaxV = max(emaxK, ek[i]), max(emaxV, ev[i])
			row := s[i*T : i*T+i+1]
			for j := range row {
				row[j] = roundShift(row[j], emaxK-ek[j])
			}
			pr := p[i*T : (i+1)*T]
			softmaxRow(pr, row, sc.ex, kappa, a.eq[r0+i]+emaxK, b)
			par := pa[i*T : (i+1)*T]
			for j := 0; j <= i; j++ {
				par[j] = int16(roundShift(int64(pr[j]), emaxV-ev[j]))
			}
			clear(par[i+1:])
			if h == 0 {
				a.eo[r0+i] = -b + emaxV
			}
		}
		kernel.PackB(kt, a.v[base:], T, dh, d)
		t.mm.mulRows(o[base:], d, pa, T, kt, T, int64(1)<<b, om, false)
	})
}

// attnKappa is round(2^16·log2(e)/√dh) (SPEC.md: the score scale in the
// exponent's base): RoundDiv(94548·2^16, Isqrt(dh·2^32)).
func attnKappa(dh int) int64 {
	return roundDiv(log2eQ16<<16, int64(fixed.Isqrt(uint64(dh)<<32)))
}

// attnInvSqrt is round(2^16/√dh): RoundDiv(2^32, Isqrt(dh·2^32)).
func attnInvSqrt(dh int) int64 {
	return roundDiv(1<<32, int64(fixed.Isqrt(uint64(dh)<<32)))
}

// softmaxRow sets p[0..len(s)) to the softmax, in Q(b), of the scores s
// (exponent es, scaled by kappa), and p[len(s)..) to 0 (the causal mask).
func softmaxRow(p []int16, s, ex []int64, kappa int64, es, b int) {
	m := s[0]
	for _, v := range s[1:] {
		m = max(m, v)
	}
	var sum int64
	ex = ex[:len(s)]
	for j, v := range s {
		u := min(shiftRound((m-v)*kappa, es), expCap)
		ex[j] = exp2NegQ15(u)
		sum += ex[j]
	}
	dv := newDivider(sum)
	for j, v := range ex {
		p[j] = int16(dv.div(v<<b + sum/2))
	}
	clear(p[len(s):])
}

// loss computes SPEC.md's next-token cross-entropy from t.logits: per
// position the softmax in Q15 and the gradient g = p − 2^15·[c = target]
// into t.g, and returns Σ loss in Q16 nats over the first rows positions.
func (t *Trainer) loss(targets []byte, rows int) int64 {
	losses := make([]int64, t.n)
	t.parallelRows(t.n, func(lo, hi int) {
		var ex [Vocab]int64
		for r := lo; r < hi; r++ {
			el := t.logitsE(r)
			z := t.logits[r*Vocab : (r+1)*Vocab]
			m := z[0]
			for _, v := range z[1:] {
				m = max(m, v)
			}
			var sum int64
			for j, v := range z {
				u := min(shiftRound((m-v)*log2eQ16, el), expCap)
				ex[j] = exp2NegQ15(u)
				sum += ex[j]
			}
			dv := newDivider(sum)
			g := t.g[r*Vocab : (r+1)*Vocab]
			y := int(targets[r])
			for j := range z {
				p := dv.div(ex[j]<<ProbBits + sum/2)
				if j == y {
					p -= 1 << ProbBits
				}
				g[j] = int32(p)
			}
			losses[r] = fixed.RoundShift(ln2Q16*(fixed.Log2Q16(uint64(sum))-15<<16), 16) +
				shiftRound(m-z[y], el+16)
		}
	})
	var sum int64
	for _, v := range losses[:rows] {
		if sum > math.MaxInt64-v { // each loss_r ≥ 0: the sum only saturates upward
			return math.MaxInt64
		}
		sum += v
	}
	return sum
}

func (t *Trainer) pack() *kernel.Packed {
	if p, ok := t.tmp.packs.Get().(*kernel.Packed); ok {
		return p
	}
	return new(kernel.Packed)
}

func (t *Trainer) unpack(p *kernel.Packed) { t.tmp.packs.Put(p) }

// attnScratch is one attention task's working space.
type attnScratch struct {
	i64a, i64b []int64 // [T, T]
	i16a       []int16 // [T, T] + 1
	ex         []int64 // [T]
}

func (t *Trainer) scratch() *attnScratch {
	if s, ok := t.tmp.scratch.Get().(*attnScratch); ok {
		return s
	}
	T := t.c.Context
	return &attnScratch{i64a: make([]int64, T*T), i64b: make([]int64, T*T), i16a: make([]int16, T*T+1), ex: make([]int64, T)}
}
