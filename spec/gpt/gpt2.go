package gpt

import "github.com/beluga-compute/beluga/spec/kernel"

// GPT-2 blocks (SPEC.md §22): the forward pass of a served model whose
// blocks are GPT-2's — LayerNorm with gain and bias, biased products, GELU
// and a head tied to the token embedding — in integers, reusing §20's
// primitives. Training such a model is refused (ErrServedOnly).

const (
	// VectorFrac is the fractional bits of a GPT-2 block's gains and
	// biases (int32, Q16).
	VectorFrac = 16
	// LayerNormEpsQ32 is LayerNorm's ε, 10^−5, in units of 2^−32:
	// round(10^−5·2^32).
	LayerNormEpsQ32 = 42950
	// GELUA1 and GELUA3 are round(2·√(2/π)·2^24) and
	// round(2·√(2/π)·0.044715·2^24): GELU's tanh form is
	// u·σ(2·√(2/π)·(u + 0.044715·u³)).
	GELUA1 = 26772563
	GELUA3 = 1197135
	// geluClamp bounds u where the cube is taken: from |u| = 16 on, σ of
	// the argument is exactly 0 or 2^15 either way.
	geluClamp = 16 << ActFrac
)

// gpt2Layout are the parameter indices of GPT-2 blocks (Config.Params).
type gpt2Layout struct{}

func (g gpt2Layout) ln1g(l int) int  { return 2 + 12*l }
func (g gpt2Layout) ln1b(l int) int  { return 3 + 12*l }
func (g gpt2Layout) qkv(l int) int   { return 4 + 12*l }
func (g gpt2Layout) qkvb(l int) int  { return 5 + 12*l }
func (g gpt2Layout) out(l int) int   { return 6 + 12*l }
func (g gpt2Layout) outb(l int) int  { return 7 + 12*l }
func (g gpt2Layout) ln2g(l int) int  { return 8 + 12*l }
func (g gpt2Layout) ln2b(l int) int  { return 9 + 12*l }
func (g gpt2Layout) up(l int) int    { return 10 + 12*l }
func (g gpt2Layout) upb(l int) int   { return 11 + 12*l }
func (g gpt2Layout) down(l int) int  { return 12 + 12*l }
func (g gpt2Layout) downb(l int) int { return 13 + 12*l }
func (g gpt2Layout) lnfg(L int) int  { return 2 + 12*L }
func (g gpt2Layout) lnfb(L int) int  { return 3 + 12*L }

// GELU is SPEC.md §22's integer GELU of u (int32, ActFrac fractional
// bits): with uc = Clamp(u, −2^20, 2^20),
// c3 = RoundShift(RoundShift(uc², 16)·uc, 16),
// w = RoundShift(GELUA1·uc + GELUA3·c3, 24) and the result
// RoundShift(u·σ(w), 15), ActFrac fractional bits.
func GELU(u int64) int64 {
	uc := clamp(u, -geluClamp, geluClamp)
	c3 := roundShift(roundShift(uc*uc, 16)*uc, 16)
	w := roundShift(GELUA1*uc+GELUA3*c3, 24)
	return roundShift(u*sigmoidQ15(w), 15)
}

// LayerNormRow is SPEC.md §22's integer LayerNorm of one row x (int32,
// ActFrac) with gain g and bias bias (Q16) into y (int32, ActFrac):
// μ = RoundDiv(Σx, D), c = x − μ, s = max(0, BitLen(max|c|) − 24),
// cs = RoundShift(c, s), ρ = Isqrt(⌊Σcs²/D⌋ + RoundShift(ε, 2s)),
// n = RoundDiv(cs·2^16, ρ), y = Sat32(RoundShift(n·g, 16) + bias).
func LayerNormRow(y, x, g, bias []int32) {
	initTables() // isqrt's table
	d := int64(len(x))
	var sum int64
	for _, v := range x {
		sum += int64(v)
	}
	mu := roundDiv(sum, d)
	var m uint64
	for _, v := range x {
		m = max(m, uabs(int64(v)-mu))
	}
	s := max(0, bitLen(int64(m))-24)
	var ss int64
	for _, v := range x {
		cs := roundShift(int64(v)-mu, s)
		ss += cs * cs
	}
	rho := isqrt(ss/d + roundShift(LayerNormEpsQ32, 2*s))
	dv := newRounder(rho)
	for i, v := range x {
		n := dv.roundDiv(roundShift(int64(v)-mu, s) << ActFrac)
		y[i] = sat32(roundShift(n*int64(g[i]), VectorFrac) + int64(bias[i]))
	}
}

// BiasOut converts a product's output acc (exponent e) to ActFrac and
// adds the bias β (Q16): Sat32(Sat32(ShiftRound(acc, e + 16)) + β).
func BiasOut(acc int64, e int, beta int32) int32 {
	return sat32(int64(sat32(shiftRound(acc, e+ActFrac))) + int64(beta))
}

// layerNorm applies LayerNormRow to every row of x into na.y and
// quantises it per row into na.yq (exponents na.ye), as rmsnorm does.
func (t *Trainer) layerNorm(na *normActs, x []int32, gp, bp int) {
	d, b := t.c.Dim, t.c.Bits
	g, bias := t.master.W[gp], t.master.W[bp]
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr := na.y[r*d : r*d+d]
			LayerNormRow(yr, x[r*d:r*d+d], g, bias)
			na.ye[r] = normRow32(na.yq[r*d:r*d+d], yr, -ActFrac, b)
		}
	})
}

// biasedResidual adds a biased product output to the residual stream:
// x = Sat32(x + BiasOut(v, e[r] + w, β)).
func (t *Trainer) biasedResidual(v []int64, e []int, w, bp int) {
	d := t.c.Dim
	beta := t.master.W[bp]
	t.parallelRows(t.n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			k := e[r] + w
			xr, vr := t.x[r*d:r*d+d], v[r*d:r*d+d]
			for i, x := range xr {
				xr[i] = sat32(int64(x) + int64(BiasOut(vr[i], k, beta[i])))
			}
		}
	})
}

// quantizeHead quantises the tied head, tok_emb, like a matrix:
// Norm(tok_emb, −MasterFrac, Bits), packed for the logits' product.
func (t *Trainer) quantizeHead(st *State) {
	n := Vocab * t.c.Dim
	t.headE = Norm32(t.headQ[:n], st.W[pTok()], -MasterFrac, t.c.Bits)
	kernel.PackBTransposed(t.headT, t.headQ, t.c.Dim, Vocab, t.c.Dim)
}

// forwardGPT2 is SPEC.md §22.3's forward pass of GPT-2 blocks; it leaves
// what forward does (the logits, their row exponents via logitsE).
func (t *Trainer) forwardGPT2(tokens []byte) {
	c, n, d, b := &t.c, t.n, t.c.Dim, t.c.Bits
	var ix gpt2Layout
	t.embed(tokens)
	for l := range c.Layers {
		a := &t.layers[l]
		t.layerNorm(&a.n1, t.x, ix.ln1g(l), ix.ln1b(l))
		qkv := t.tmp.acc[:n*3*d]
		t.linear(qkv, a.n1.yq, ix.qkv(l))
		wq, beta := t.we[ix.qkv(l)], t.master.W[ix.qkvb(l)]
		t.parallelRows(n, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row, e := qkv[r*3*d:(r+1)*3*d], a.n1.ye[r]+wq
				for i, v := range row {
					row[i] = int64(BiasOut(v, e, beta[i]))
				}
				a.eq[r] = normRow(a.q[r*d:r*d+d], row[:d], -ActFrac, b)
				a.ek[r] = normRow(a.k[r*d:r*d+d], row[d:2*d], -ActFrac, b)
				a.ev[r] = normRow(a.v[r*d:r*d+d], row[2*d:], -ActFrac, b)
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
		t.linear(proj, a.o, ix.out(l))
		t.biasedResidual(proj, a.eo, t.we[ix.out(l)], ix.outb(l))
		// MLP.
		t.layerNorm(&a.n2, t.x, ix.ln2g(l), ix.ln2b(l))
		f := c.FF
		up := t.tmp.acc[:n*f]
		t.linear(up, a.n2.yq, ix.up(l))
		wu, ub := t.we[ix.up(l)], t.master.W[ix.upb(l)]
		hs := t.tmp.acc2[:n*f]
		t.parallelRows(n, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				e := a.n2.ye[r] + wu
				for i := range f {
					hs[r*f+i] = GELU(int64(BiasOut(up[r*f+i], e, ub[i])))
				}
				a.eh[r] = normRow(a.h[r*f:(r+1)*f], hs[r*f:(r+1)*f], -ActFrac, b)
			}
		})
		down := t.tmp.acc[:n*d]
		t.linear(down, a.h, ix.down(l))
		t.biasedResidual(down, a.eh, t.we[ix.down(l)], ix.downb(l))
	}
	t.layerNorm(&t.fin, t.x, ix.lnfg(c.Layers), ix.lnfb(c.Layers))
	om := t.opMax()
	t.mm.mul(t.logits, Vocab, t.fin.yq, d, t.headT, n, om, om, false)
}
