package gpt

import (
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
// leaves the logits in t.logits at exponent t.logitsE.
func (t *Trainer) forward(tokens []byte) {
	c, n, d := &t.c, t.n, t.c.Dim
	tok, pos := t.wqMaster(pTok()), t.wqMaster(pPos())
	// Embedding: x = Sat32(RoundShift(tok[token] + pos[i], MasterFrac − ActFrac)).
	t.parallelRows(n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			tr := tok[int(tokens[r])*d:][:d]
			pr := pos[(r%c.Context)*d:][:d]
			xr := t.x[r*d : r*d+d]
			for i := range xr {
				xr[i] = sat32(roundShift(int64(tr[i])+int64(pr[i]), MasterFrac-ActFrac))
			}
		}
	})
	for l := range c.Layers {
		a := &t.layers[l]
		// Attention.
		t.rmsnorm(&a.n1, t.x)
		qkv := t.tmp.acc[:n*3*d]
		t.linear(qkv, a.n1.yq, a.n1.ye, pQKV(l))
		eqkv := a.n1.ye + t.we[pQKV(l)]
		a.eq = t.normCols(a.q, qkv, 3*d, 0, d, eqkv)
		a.ek = t.normCols(a.k, qkv, 3*d, d, d, eqkv)
		a.ev = t.normCols(a.v, qkv, 3*d, 2*d, d, eqkv)
		o := t.tmp.acc2[:n*d]
		t.attention(a, o)
		a.eo = Norm(a.o[:n*d], o, -c.Bits+a.ev, c.Bits)
		proj := t.tmp.acc[:n*d]
		t.linear(proj, a.o, a.eo, pOut(l))
		t.residual(proj, a.eo+t.we[pOut(l)])
		// MLP.
		t.rmsnorm(&a.n2, t.x)
		up := t.tmp.acc[:n*c.FF]
		t.linear(up, a.n2.yq, a.n2.ye, pUp(l))
		eu := a.n2.ye + t.we[pUp(l)]
		hs := t.tmp.acc2[:n*c.FF]
		t.parallelRows(n, func(lo, hi int) {
			for i := lo * c.FF; i < hi*c.FF; i++ {
				u := int64(sat32(shiftRound(up[i], eu+ActFrac)))
				sg := sigmoidFast(u)
				a.u[i], a.sig[i] = int32(u), uint16(sg)
				hs[i] = roundShift(u*sg, 15)
			}
		})
		a.eh = Norm(a.h[:n*c.FF], hs, -ActFrac, c.Bits)
		down := t.tmp.acc[:n*d]
		t.linear(down, a.h, a.eh, pDown(l))
		t.residual(down, a.eh+t.we[pDown(l)])
	}
	t.rmsnorm(&t.fin, t.x)
	t.linear(t.logits, t.fin.yq, t.fin.ye, t.pHead())
}

// logitsE is the exponent of t.logits.
func (t *Trainer) logitsE() int { return t.fin.ye + t.we[t.pHead()] }

// wqMaster returns an embedding's master weights, which the embedding
// reads unquantised.
func (t *Trainer) wqMaster(i int) []int32 { return t.master.W[i] }

// linear sets dst [N, out] to the exact product x · Wqᵀ (exponent ex + we).
func (t *Trainer) linear(dst []int64, x []int16, ex, p int) {
	pr := t.params[p]
	om := t.opMax()
	t.mm.mul(dst, pr.Rows, x, pr.In, t.wT[p], t.n, om, om, false)
}

// residual adds (v, e) to the residual stream: x = Sat32(x + ShiftRound(v, e + ActFrac)).
func (t *Trainer) residual(v []int64, e int) {
	t.parallelRows(len(t.x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			t.x[i] = sat32(int64(t.x[i]) + shiftRound(v[i], e+ActFrac))
		}
	})
}

// normCols quantises columns [c0, c0+w) of the [N, ld] tensor (v, e) into
// dst [N, w] (Norm over that block) and returns the exponent.
func (t *Trainer) normCols(dst []int16, v []int64, ld, c0, w, e int) int {
	var m uint64
	for r := range t.n {
		if a := maxAbs64(v[r*ld+c0 : r*ld+c0+w]); a > m {
			m = a
		}
	}
	b := t.c.Bits
	s := normShift(m, b)
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src, dr := v[r*ld+c0:r*ld+c0+w], dst[r*w:r*w+w]
			for i, x := range src {
				dr[i] = int16(normValue(x, s, b))
			}
		}
	})
	return e + s
}

// rmsnorm is SPEC.md's RMSNorm of the residual stream x [N, D] (ActFrac):
// s = max(0, BitLen(max|x|) − 24) for the whole tensor; per row
// xs = RoundShift(x, s), r = Isqrt(⌊Σ xs² / D⌋), y = RoundDiv(xs·2^ActFrac, r)
// (0 when r = 0); then yq = Norm(y, −ActFrac, Bits).
func (t *Trainer) rmsnorm(na *normActs, x []int32) {
	d := t.c.Dim
	na.s = max(0, bitLen(int64(maxAbs32(x)))-24)
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*d:r*d+d], na.y[r*d:r*d+d]
			var ss int64
			for _, v := range xr {
				xs := roundShift(int64(v), na.s)
				ss += xs * xs
			}
			rr := int64(fixed.Isqrt(uint64(ss / int64(d))))
			na.r[r] = rr
			for i, v := range xr {
				if rr == 0 {
					yr[i] = 0
					continue
				}
				yr[i] = int32(roundDiv(roundShift(int64(v), na.s)<<ActFrac, rr))
			}
		}
	})
	na.ye = Norm32(na.yq[:t.n*d], na.y, -ActFrac, t.c.Bits)
}

// attention computes, per sequence b and head h, the causal softmax of
// Q·Kᵀ/√Dh and its product with V, into o [N, D] (exponent −Bits + ev),
// saving the probabilities.
func (t *Trainer) attention(a *layerActs, o []int64) {
	c := &t.c
	T, d, dh, b := c.Context, c.Dim, c.HeadDim(), c.Bits
	kappa := attnKappa(dh)
	es := a.eq + a.ek
	om := t.opMax()
	t.parallel(c.Batch*c.Heads, func(task int) {
		bi, h := task/c.Heads, task%c.Heads
		base := bi*T*d + h*dh
		kt := t.pack()
		defer t.unpack(kt)
		sc := t.scratch()
		defer t.tmp.scratch.Put(sc)
		s := sc.i64a
		kernel.PackBTransposed(kt, a.k[base:], dh, T, d)
		t.mm.mulRows(s, T, a.q[base:], d, kt, T, om, om, false)
		p := a.p[task*T*T : (task+1)*T*T]
		for i := range T {
			softmaxRow(p[i*T:(i+1)*T], s[i*T:i*T+i+1], sc.ex, kappa, es, b)
		}
		vp := kt
		kernel.PackB(vp, a.v[base:], T, dh, d)
		t.mm.mulRows(o[base:], d, a.p[task*T*T:], T, vp, T, int64(1)<<b, om, false)
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
	for j, v := range ex {
		p[j] = int16((v<<b + sum/2) / sum)
	}
	clear(p[len(s):])
}

// loss computes SPEC.md's next-token cross-entropy from t.logits: per
// position the softmax in Q15 and the gradient g = p − 2^15·[c = target]
// into t.g, and returns Σ loss in Q16 nats over the first rows positions.
func (t *Trainer) loss(targets []byte, rows int) int64 {
	el := t.logitsE()
	losses := make([]int64, t.n)
	t.parallelRows(t.n, func(lo, hi int) {
		var ex [Vocab]int64
		for r := lo; r < hi; r++ {
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
			g := t.g[r*Vocab : (r+1)*Vocab]
			y := int(targets[r])
			for j := range z {
				p := (ex[j]<<ProbBits + sum/2) / sum
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
