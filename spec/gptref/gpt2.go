package gptref

import (
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// The forward operators of GPT-2 blocks (SPEC.md §22.2–§22.3), written
// from the SPEC's text: LayerNorm with gain and bias, the biased products,
// GELU and the head tied to the token embedding. Gains and biases are
// sources (state tensors of shape [1, n], Q16), read as they are.

// Constants of §22.2.
const (
	vectorFrac = 16       // gains and biases: Q16
	lnEps      = 42950    // ε = 10⁻⁵ in units of 2⁻³²
	geluA1     = 26772563 // round(2√(2/π)·2²⁴)
	geluA3     = 1197135  // round(2√(2/π)·0.044715·2²⁴)
	geluClamp  = 1 << 20  // ±16.0 with A fractional bits
)

// Saturation sites of §22.2.
const (
	siteLayerNorm = "LayerNorm Sat32"
	siteBiasOut   = "BiasOut Sat32"
)

// forwardOpsGPT2 appends §22.3's operators over m's rows: the matrices'
// and the tied head's quantisation, then the forward pass up to the
// logits.
func (g *Graph) forwardOpsGPT2(m *dims) {
	c := m.cfg
	n, d, f, t := m.n, m.d, m.f, m.t
	n64, d64, f64, t64 := int64(n), int64(d), int64(f), int64(t)
	qb := rng{-m.lim, m.lim}
	prod := func(k int) rng { b := int64(k) * m.lim * m.lim; return rng{-b, b} }
	one, rows := []int{1}, []int{n}
	nd := []int{n, d}
	// §22.3: every matrix quantised before the pass, and the token
	// embedding quantised like a matrix for the tied head (its first
	// operator, tok_emb being parameter 0).
	for _, p := range g.params {
		if p.Vector || (p.Embedding && p.Name != "tok_emb") {
			continue
		}
		g.op(Op{Kind: "quantize", Name: "quantize." + p.Name, Inputs: []string{p.Name}, Work: int64(p.Rows) * int64(p.In), run: m.quantizeWeights},
			out(p.Name+".wq", []int{p.Rows, p.In}, qb), out(p.Name+".wq.exp", one, expRange))
	}
	g.op(Op{Kind: "embed", Name: "embed", Inputs: []string{"tok_emb", "pos_emb", "tokens"}, Work: n64 * d64, run: m.embed},
		out("act.0.x", nd, i32Range))
	layernorm := func(name, x, params, prefix string) {
		g.op(Op{Kind: "layernorm", Name: name, Inputs: []string{x, params + ".gain", params + ".bias"}, Work: 4 * n64 * d64, run: m.layernorm},
			out(prefix+".y", nd, i32Range), out(prefix+".yq", nd, qb), out(prefix+".yq.exp", rows, expRange))
	}
	for l := range c.Layers {
		a, blk := fmt.Sprintf("act.%d.", l), fmt.Sprintf("blocks.%d.", l)
		qkv, wout, up, down := blk+"attn.qkv", blk+"attn.out", blk+"mlp.up", blk+"mlp.down"
		layernorm(fmt.Sprintf("%d.ln1", l), a+"x", blk+"ln1", a+"ln1")
		g.op(Op{Kind: "qkv.bias", Name: fmt.Sprintf("%d.qkv", l), Inputs: []string{a + "ln1.yq", a + "ln1.yq.exp", qkv + ".wq", qkv + ".wq.exp", qkv + ".bias"},
			Work: n64 * 3 * d64 * d64, run: m.qkvBias},
			out(a+"Q", nd, qb), out(a+"K", nd, qb), out(a+"V", nd, qb),
			out(a+"Q.exp", rows, expRange), out(a+"K.exp", rows, expRange), out(a+"V.exp", rows, expRange))
		g.op(Op{Kind: "attn", Name: fmt.Sprintf("%d.attn", l), Inputs: []string{a + "Q", a + "K", a + "V", a + "Q.exp", a + "K.exp", a + "V.exp"},
			Work: 2 * int64(m.batch) * t64 * t64 * d64, run: m.attention},
			out(a+"attn.P", []int{m.batch, m.heads, t, t}, rng{0, m.lim + 1}),
			out(a+"attn.Oq", nd, qb), out(a+"attn.Oq.exp", rows, expRange))
		g.op(Op{Kind: "residual.bias", Name: fmt.Sprintf("%d.out", l), Inputs: []string{a + "attn.Oq", a + "attn.Oq.exp", wout + ".wq", wout + ".wq.exp", a + "x", wout + ".bias"},
			Work: n64 * d64 * d64, run: m.residualBias},
			out(a+"xmid", nd, i32Range))
		layernorm(fmt.Sprintf("%d.ln2", l), a+"xmid", blk+"ln2", a+"ln2")
		g.op(Op{Kind: "up.bias", Name: fmt.Sprintf("%d.up", l), Inputs: []string{a + "ln2.yq", a + "ln2.yq.exp", up + ".wq", up + ".wq.exp", up + ".bias"},
			Work: n64 * f64 * d64, run: m.upBias},
			out(a+"u", []int{n, f}, i32Range))
		g.op(Op{Kind: "gelu", Name: fmt.Sprintf("%d.gelu", l), Inputs: []string{a + "u"}, Work: n64 * f64, run: m.gelu},
			out(a+"hq", []int{n, f}, qb), out(a+"hq.exp", rows, expRange))
		g.op(Op{Kind: "residual.bias", Name: fmt.Sprintf("%d.down", l), Inputs: []string{a + "hq", a + "hq.exp", down + ".wq", down + ".wq.exp", a + "xmid", down + ".bias"},
			Work: n64 * d64 * f64, run: m.residualBias},
			out(fmt.Sprintf("act.%d.x", l+1), nd, i32Range))
	}
	layernorm("final.ln", fmt.Sprintf("act.%d.x", c.Layers), "ln_f", "act.final")
	g.op(Op{Kind: "head", Name: "head", Inputs: []string{"act.final.yq", "act.final.yq.exp", "tok_emb.wq", "tok_emb.wq.exp"}, Work: n64 * gpt.Vocab * d64, run: m.head},
		out("act.logits", []int{n, gpt.Vocab}, prod(d)), out("act.logits.exp", rows, expRange))
}

// layernorm: §22.2, row by row: μ = RoundDiv(Σx, D), c = x − μ,
// s = max(0, BitLen(max|c|) − 24), cs = RoundShift(c, s),
// ρ = Isqrt(⌊Σcs²/D⌋ + RoundShift(ε, 2s)), n = RoundDiv(cs·2^16, ρ),
// y = Sat32(RoundShift(n·g, 16) + β); then (yq, e_y) = NormRow(y, −16, b).
func (m *dims) layernorm(_ int64, in [][]int64, ar *arith) [][]int64 {
	x, gain, bias, d := in[0], in[1], in[2], m.d
	d64 := int64(d)
	y := make([]int64, m.n*d)
	cs := make([]int64, d)
	for r := range m.n {
		row := x[r*d : (r+1)*d]
		var sum int64 // |x| < 2^31: |Σx| < D·2^31
		for _, v := range row {
			sum += v
		}
		mu := roundDiv(sum, d64)
		var top int64
		for _, v := range row {
			top = max(top, bitLen(v-mu)) // |x − μ| < 2^32
		}
		s := max(0, top-rmsBits)
		var ss int64 // Σcs² ≤ D·2^48
		for i, v := range row {
			cs[i] = roundShift(v-mu, s)
			ss += cs[i] * cs[i]
		}
		rho := isqrt(ss/d64 + roundShift(lnEps, 2*s))
		if rho == 0 {
			// s = 0 leaves ε in the sum, s > 0 a |cs| ≥ 2^23: unreachable.
			ar.reject("LayerNorm's ρ is 0")
			return nil
		}
		for i := range d {
			nv := roundDiv(cs[i]<<actFrac, rho) // |cs|·2^16 < 2^41
			// |n| ≤ 2^41, |g| < 2^31: the product is checked.
			y[r*d+i] = clampAt(siteLayerNorm, ar.add(roundShift(ar.mul(nv, gain[i]), vectorFrac), bias[i]), math.MinInt32, math.MaxInt32)
		}
	}
	ey := make([]int64, m.n)
	for r := range ey {
		ey[r] = -actFrac
	}
	yq, eq := quantizeRows(y, d, ey, m.bits)
	return [][]int64{y, yq, eq}
}

// biasOut is BiasOut(a, e, β) of §22.2: Sat32(Sat32(ShiftRound(a, e + 16)) + β).
func biasOut(a, e, beta int64) int64 {
	v := clampAt(siteBiasOut, shiftRound(a, e+actFrac), math.MinInt32, math.MaxInt32)
	return clampAt(siteBiasOut, v+beta, math.MinInt32, math.MaxInt32)
}

// qkvBias: §22.3, Y = y1q·qkvqᵀ (row r at e1[r] + e_qkv), Y' = BiasOut(Y,
// e1[r] + e_qkv, qkv.bias), and NormRow(·, −16, b) of each column block
// [0, D), [D, 2D), [2D, 3D) of each row of Y' on its own.
func (m *dims) qkvBias(_ int64, in [][]int64, _ *arith) [][]int64 {
	yq, ey, wq, ew, bias := in[0], in[1], in[2], in[3][0], in[4]
	d := m.d
	y := matmulT(yq, wq, m.n, d, 3*d)
	var res, exps [3][]int64
	for k := range 3 {
		res[k], exps[k] = make([]int64, m.n*d), make([]int64, m.n)
	}
	for r := range m.n {
		row := y[r*3*d : (r+1)*3*d]
		for o := range row {
			row[o] = biasOut(row[o], ey[r]+ew, bias[o])
		}
		for k := range 3 {
			q, e := quantize(row[k*d:(k+1)*d], -actFrac, m.bits)
			copy(res[k][r*d:], q)
			exps[k][r] = e
		}
	}
	return [][]int64{res[0], res[1], res[2], exps[0], exps[1], exps[2]}
}

// residualBias: §22.3, the out (or down) product a = aq·Wqᵀ added with its
// bias to the residual stream: x[r][o] = Sat32(x[r][o] + BiasOut(a[r][o],
// e_a[r] + e_W, β[o])).
func (m *dims) residualBias(_ int64, in [][]int64, _ *arith) [][]int64 {
	aq, ea, wq, ew, x, bias := in[0], in[1], in[2], in[3][0], in[4], in[5]
	k := len(aq) / m.n
	a := matmulT(aq, wq, m.n, k, m.d)
	res := make([]int64, m.n*m.d)
	for r := range m.n {
		for i := range m.d {
			// Both terms are int32: the sum fits int64.
			res[r*m.d+i] = clampAt(siteResidual, x[r*m.d+i]+biasOut(a[r*m.d+i], ea[r]+ew, bias[i]), math.MinInt32, math.MaxInt32)
		}
	}
	return [][]int64{res}
}

// upBias: §22.3, Z = y2q·upqᵀ and u[r][o] = BiasOut(Z[r][o], e2[r] + e_up, up.bias[o]).
func (m *dims) upBias(_ int64, in [][]int64, _ *arith) [][]int64 {
	yq, ey, wq, ew, bias := in[0], in[1], in[2], in[3][0], in[4]
	z := matmulT(yq, wq, m.n, m.d, m.f)
	for r := range m.n {
		for i := range m.f {
			z[r*m.f+i] = biasOut(z[r*m.f+i], ey[r]+ew, bias[i])
		}
	}
	return [][]int64{z}
}

// gelu: §22.2, h = GELU(u) with uc = Clamp(u, −2^20, 2^20),
// c3 = RoundShift(RoundShift(uc², 16)·uc, 16), w = RoundShift(A1·uc +
// A3·c3, 24), GELU(u) = RoundShift(u·σ(w), 15); then (hq, eh) =
// NormRow(h, −16, b).
func (m *dims) gelu(_ int64, in [][]int64, _ *arith) [][]int64 {
	u := in[0]
	h := make([]int64, len(u))
	for i, v := range u {
		uc := fixed.Clamp(v, -geluClamp, geluClamp)
		c3 := roundShift(roundShift(uc*uc, 16)*uc, 16)
		w := roundShift(geluA1*uc+geluA3*c3, 24)
		h[i] = roundShift(v*sigma(w), 15)
	}
	e := make([]int64, m.n)
	for r := range e {
		e[r] = -actFrac
	}
	hq, eh := quantizeRows(h, m.f, e, m.bits)
	return [][]int64{hq, eh}
}
