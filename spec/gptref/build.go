package gptref

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/gpt"
)

// dims are a configuration's sizes and the constants of §20.9 that its
// operators read.
type dims struct {
	n, d, f, t, batch, heads, dh, bits int
	lim                                int64 // 2^b − 1: the largest quantised operand
	kappa, iota                        int64 // log₂e/√Dh and 1/√Dh in Q16
	cfg                                gpt.Config
}

// A value range [lo, hi].
type rng struct{ lo, hi int64 }

var (
	i32Range = rng{minI32, maxI32}
	anyRange = rng{-maxI64, maxI64}
	// expRange bounds every exponent. An exponent moves by less than 2^7
	// per operator and a step has fewer than 2^11 operators, so valid steps
	// stay far inside; the bound keeps exponent arithmetic trivially exact.
	expRange = rng{-1 << 20, 1 << 20}
	// varRange bounds AdamW's second moment: RoundShift(h², 16) < 2^46 for
	// |h| < 2^31, and v stays a convex combination of such values.
	varRange = rng{0, 1 << 46}
)

// newDims returns the sizes and constants of c's operators over n rows of
// `batch` windows of t positions each.
func newDims(c gpt.Config, n, t, batch int) *dims {
	dh := c.HeadDim()
	r := isqrt(int64(dh) << 32)
	return &dims{
		n: n, d: c.Dim, f: c.FF, t: t, batch: batch, heads: c.Heads, dh: dh, bits: c.Bits,
		lim:   int64(1)<<c.Bits - 1,
		kappa: roundDiv(log2e<<16, r), iota: roundDiv(1<<32, r),
		cfg: c,
	}
}

// NewGraph validates c and returns the operator graph of its training
// step. A model of GPT-2 blocks (SPEC.md §22) has none: it is served, not
// trained (ErrGPT2).
func NewGraph(c gpt.Config) (*Graph, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gptref: %w", err)
	}
	if c.GPT2 {
		return nil, ErrGPT2
	}
	c.LR = append([]gpt.LRPoint(nil), c.LR...)
	m := newDims(c, c.Tokens(), c.Context, c.Batch)
	g := &Graph{cfg: c, byName: map[string]int{}, params: c.Params()}
	n, d, f, t := m.n, m.d, m.f, m.t
	n64, d64, f64, t64 := int64(n), int64(d), int64(f), int64(t)
	prod := func(k int) rng { b := int64(k) * m.lim * m.lim; return rng{-b, b} }
	one, rows := []int{1}, []int{n}
	nd := []int{n, d}

	// Sources: the state (§20.10) in parameter order, then the batch.
	for _, p := range g.params {
		shape := []int{p.Rows, p.In}
		g.source(p.Name, StateIn, shape, i32Range)
		g.source(p.Name+".m", StateIn, shape, i32Range)
		g.source(p.Name+".v", StateIn, shape, varRange)
	}
	g.source("tokens", BatchIn, rows, rng{0, 255})
	g.source("targets", BatchIn, rows, rng{0, 255})
	g.forwardOps(m)

	// §20.12 loss.
	g.op(Op{Kind: "loss", Name: "loss", Inputs: []string{"act.logits", "act.logits.exp", "targets"}, Work: n64 * gpt.Vocab, run: m.loss},
		out("loss.grad", []int{n, gpt.Vocab}, rng{-1 << probBits, 1 << probBits}), out("loss.grad.exp", one, rng{-probBits, -probBits}),
		out("loss.sum", one, anyRange))

	// §20.13 backward.
	// The product y = x·Wᵀ with W [rowsW, inW]: dx sums over rowsW.
	linearBwd := func(name, grad, x, w string, rowsW, inW int, dw, dx string) {
		g.op(Op{Kind: "linear.bwd", Name: name, Inputs: []string{grad, grad + ".exp", x, x + ".exp", w + ".wq", w + ".wq.exp"},
			Work: 2 * n64 * int64(rowsW) * int64(inW), run: m.linearBackward},
			out(dw, []int{rowsW, inW}, prod(n)), out(dw+".exp", one, expRange),
			out(dx, []int{n, inW}, prod(rowsW)), out(dx+".exp", one, expRange))
	}
	rmsBwd := func(name, grad, prefix, dx string) {
		g.op(Op{Kind: "rmsnorm.bwd", Name: name, Inputs: []string{grad, grad + ".exp", prefix + ".y", prefix + ".rho", prefix + ".s"}, Work: 3 * n64 * d64, run: m.rmsnormBackward},
			out(dx, nd, anyRange), out(dx+".exp", one, expRange))
	}
	addOp := func(name, x, v, sum string) {
		g.op(Op{Kind: "add", Name: name, Inputs: []string{x, x + ".exp", v, v + ".exp"}, Work: n64 * d64, run: m.add},
			out(sum, nd, anyRange), out(sum+".exp", one, expRange))
	}
	linearBwd("head.bwd", "loss.grad", "act.final.yq", "head", gpt.Vocab, d, "grad.head", "grad.final.dy")
	rmsBwd("final.ln.bwd", "grad.final.dy", "act.final", fmt.Sprintf("grad.%d.x", c.Layers))
	for l := c.Layers - 1; l >= 0; l-- {
		a, gr, blk := fmt.Sprintf("act.%d.", l), fmt.Sprintf("grad.%d.", l), fmt.Sprintf("blocks.%d.", l)
		qkv, wout, up, down := blk+"attn.qkv", blk+"attn.out", blk+"mlp.up", blk+"mlp.down"
		gin := fmt.Sprintf("grad.%d.x", l+1)
		linearBwd(fmt.Sprintf("%d.down.bwd", l), gin, a+"hq", down, d, f, "grad."+down, gr+"dh")
		g.op(Op{Kind: "silu.bwd", Name: fmt.Sprintf("%d.silu.bwd", l), Inputs: []string{gr + "dh", gr + "dh.exp", a + "u"}, Work: n64 * f64, run: m.siluBackward},
			out(gr+"du", []int{n, f}, anyRange), out(gr+"du.exp", one, expRange))
		linearBwd(fmt.Sprintf("%d.up.bwd", l), gr+"du", a+"ln2.yq", up, f, d, "grad."+up, gr+"dy2")
		rmsBwd(fmt.Sprintf("%d.ln2.bwd", l), gr+"dy2", a+"ln2", gr+"dn2")
		addOp(fmt.Sprintf("%d.add2", l), gin, gr+"dn2", gr+"xmid")
		linearBwd(fmt.Sprintf("%d.out.bwd", l), gr+"xmid", a+"attn.Oq", wout, d, d, "grad."+wout, gr+"dO")
		// dQ and dK sum T products of b-bit operands; dV sums T products
		// P·dOq with P ≤ 2^b.
		dqkv := rng{-(m.lim + 1) * m.lim * t64, (m.lim + 1) * m.lim * t64}
		g.op(Op{Kind: "attn.bwd", Name: fmt.Sprintf("%d.attn.bwd", l), Inputs: []string{gr + "dO", gr + "dO.exp", a + "attn.P", a + "Q", a + "K", a + "V", a + "Q.exp", a + "K.exp", a + "V.exp"},
			Work: 4 * int64(m.batch) * t64 * t64 * d64, run: m.attentionBackward},
			out(gr+"dQ", nd, dqkv), out(gr+"dQ.exp", one, expRange),
			out(gr+"dK", nd, dqkv), out(gr+"dK.exp", one, expRange),
			out(gr+"dV", nd, dqkv), out(gr+"dV.exp", one, expRange))
		g.op(Op{Kind: "qkv.bwd", Name: fmt.Sprintf("%d.qkv.bwd", l), Inputs: []string{gr + "dQ", gr + "dQ.exp", gr + "dK", gr + "dK.exp", gr + "dV", gr + "dV.exp",
			a + "ln1.yq", a + "ln1.yq.exp", qkv + ".wq", qkv + ".wq.exp"}, Work: 2 * n64 * 3 * d64 * d64, run: m.qkvBackward},
			out("grad."+qkv, []int{3 * d, d}, prod(n)), out("grad."+qkv+".exp", one, expRange),
			out(gr+"dy1", nd, prod(3*d)), out(gr+"dy1.exp", one, expRange))
		rmsBwd(fmt.Sprintf("%d.ln1.bwd", l), gr+"dy1", a+"ln1", gr+"dn1")
		addOp(fmt.Sprintf("%d.add1", l), gr+"xmid", gr+"dn1", gr+"x")
	}
	g.op(Op{Kind: "embed.bwd", Name: "embed.bwd", Inputs: []string{"grad.0.x", "grad.0.x.exp", "tokens"}, Work: 2 * n64 * d64, run: m.embedBackward},
		out("grad.tok_emb", []int{gpt.Vocab, d}, anyRange), out("grad.tok_emb.exp", one, expRange),
		out("grad.pos_emb", []int{t, d}, anyRange), out("grad.pos_emb.exp", one, expRange))

	// §20.14 AdamW: the global norm, then every parameter.
	var grads []string
	var total int64
	for _, p := range g.params {
		grads = append(grads, "grad."+p.Name, "grad."+p.Name+".exp")
		total += int64(p.Rows) * int64(p.In)
	}
	g.op(Op{Kind: "adamw.norm", Name: "adamw.norm", Inputs: grads, Work: total, run: m.gradNorm},
		out("adamw.norm", one, rng{0, isqrt(maxI64)}))
	for _, p := range g.params {
		shape := []int{p.Rows, p.In}
		g.op(Op{Kind: "adamw", Name: "adamw." + p.Name, Inputs: []string{p.Name, p.Name + ".m", p.Name + ".v", "grad." + p.Name, "grad." + p.Name + ".exp", "adamw.norm"},
			Work: 4 * int64(p.Rows) * int64(p.In), run: m.adamw},
			TensorInfo{Name: "next." + p.Name, Kind: StateOut, StateName: p.Name, Shape: shape, Min: -maxI32, Max: maxI32},
			TensorInfo{Name: "next." + p.Name + ".m", Kind: StateOut, StateName: p.Name + ".m", Shape: shape, Min: minI32, Max: maxI32},
			TensorInfo{Name: "next." + p.Name + ".v", Kind: StateOut, StateName: p.Name + ".v", Shape: shape, Min: varRange.lo, Max: varRange.hi})
	}
	return g, nil
}

// NewForwardGraph validates c and returns the operator graph of the
// forward pass (SPEC.md §20.10–§20.11) over ONE window of n tokens,
// 1 ≤ n ≤ c.Context: what inference computes (§21). Its sources are the
// model's parameters P (the state's weight tensors, with the training
// graph's names and in its order, so that their hashes are the state
// digest's leaves) and the n tokens; its operators are the training
// graph's forward ones — quantize per matrix, embed, per block rmsnorm,
// qkv, attn, residual (out), rmsnorm, up, silu, residual (down), then
// rmsnorm and the head — with batch 1 and n rows, ending with act.logits
// [n, 256] and act.logits.exp [n]. c.Batch is not read.
//
// The pass is causal and row-local (§20.11): row r depends on tokens
// 0 … r only, so these n rows are exactly the first n rows of the pass over
// the window padded to c.Context, which gpt.Generator computes.
//
// For a model of GPT-2 blocks (c.GPT2, SPEC.md §22) the sources are
// §22.1's parameters (gains and biases too, as [1, n] state tensors) and
// the operators §22.3's: quantize per matrix and of tok_emb (the tied
// head), embed, per block layernorm, qkv.bias, attn, residual.bias (out),
// layernorm, up.bias, gelu, residual.bias (down), then layernorm and the
// head over tok_emb's quantisation.
func NewForwardGraph(c gpt.Config, n int) (*Graph, error) {
	c.Batch = 1
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gptref: %w", err)
	}
	if n < 1 || n > c.Context {
		return nil, fmt.Errorf("%w: a forward pass over %d tokens, want 1 to the context %d", ErrBadOpInput, n, c.Context)
	}
	c.LR = append([]gpt.LRPoint(nil), c.LR...)
	m := newDims(c, n, n, 1)
	g := &Graph{cfg: c, byName: map[string]int{}, params: c.Params(), forward: true}
	for _, p := range g.params {
		g.source(p.Name, StateIn, []int{p.Rows, p.In}, i32Range)
	}
	g.source("tokens", BatchIn, []int{n}, rng{0, 255})
	if c.GPT2 {
		g.forwardOpsGPT2(m)
	} else {
		g.forwardOps(m)
	}
	return g, nil
}

// forwardOps appends the operators of §20.10–§20.11 over m's rows: the
// weights' quantisation, then the forward pass up to the logits.
func (g *Graph) forwardOps(m *dims) {
	c := m.cfg
	n, d, f, t := m.n, m.d, m.f, m.t
	n64, d64, f64, t64 := int64(n), int64(d), int64(f), int64(t)
	qb := rng{-m.lim, m.lim}
	prod := func(k int) rng { b := int64(k) * m.lim * m.lim; return rng{-b, b} }
	one, rows := []int{1}, []int{n}
	nd := []int{n, d}
	// §20.10: every matrix quantised before the step.
	for _, p := range g.params {
		if p.Embedding {
			continue
		}
		g.op(Op{Kind: "quantize", Name: "quantize." + p.Name, Inputs: []string{p.Name}, Work: int64(p.Rows) * int64(p.In), run: m.quantizeWeights},
			out(p.Name+".wq", []int{p.Rows, p.In}, qb), out(p.Name+".wq.exp", one, expRange))
	}

	// §20.11 forward.
	g.op(Op{Kind: "embed", Name: "embed", Inputs: []string{"tok_emb", "pos_emb", "tokens"}, Work: n64 * d64, run: m.embed},
		out("act.0.x", nd, i32Range))
	rmsnorm := func(name, x, prefix string) {
		g.op(Op{Kind: "rmsnorm", Name: name, Inputs: []string{x}, Work: 3 * n64 * d64, run: m.rmsnorm},
			out(prefix+".y", nd, rng{-1 << 24, 1 << 24}), out(prefix+".rho", rows, rng{0, 1 << 24}), out(prefix+".s", rows, rng{0, 8}),
			out(prefix+".yq", nd, qb), out(prefix+".yq.exp", rows, expRange))
	}
	for l := range c.Layers {
		a, blk := fmt.Sprintf("act.%d.", l), fmt.Sprintf("blocks.%d.", l)
		qkv, wout, up, down := blk+"attn.qkv", blk+"attn.out", blk+"mlp.up", blk+"mlp.down"
		rmsnorm(fmt.Sprintf("%d.ln1", l), a+"x", a+"ln1")
		g.op(Op{Kind: "qkv", Name: fmt.Sprintf("%d.qkv", l), Inputs: []string{a + "ln1.yq", a + "ln1.yq.exp", qkv + ".wq", qkv + ".wq.exp"}, Work: n64 * 3 * d64 * d64, run: m.qkv},
			out(a+"Q", nd, qb), out(a+"K", nd, qb), out(a+"V", nd, qb),
			out(a+"Q.exp", rows, expRange), out(a+"K.exp", rows, expRange), out(a+"V.exp", rows, expRange))
		g.op(Op{Kind: "attn", Name: fmt.Sprintf("%d.attn", l), Inputs: []string{a + "Q", a + "K", a + "V", a + "Q.exp", a + "K.exp", a + "V.exp"},
			Work: 2 * int64(m.batch) * t64 * t64 * d64, run: m.attention},
			out(a+"attn.P", []int{m.batch, m.heads, t, t}, rng{0, m.lim + 1}),
			out(a+"attn.Oq", nd, qb), out(a+"attn.Oq.exp", rows, expRange))
		g.op(Op{Kind: "residual", Name: fmt.Sprintf("%d.out", l), Inputs: []string{a + "attn.Oq", a + "attn.Oq.exp", wout + ".wq", wout + ".wq.exp", a + "x"}, Work: n64 * d64 * d64, run: m.residual},
			out(a+"xmid", nd, i32Range))
		rmsnorm(fmt.Sprintf("%d.ln2", l), a+"xmid", a+"ln2")
		g.op(Op{Kind: "up", Name: fmt.Sprintf("%d.up", l), Inputs: []string{a + "ln2.yq", a + "ln2.yq.exp", up + ".wq", up + ".wq.exp"}, Work: n64 * f64 * d64, run: m.up},
			out(a+"u", []int{n, f}, i32Range))
		g.op(Op{Kind: "silu", Name: fmt.Sprintf("%d.silu", l), Inputs: []string{a + "u"}, Work: n64 * f64, run: m.silu},
			out(a+"hq", []int{n, f}, qb), out(a+"hq.exp", rows, expRange))
		g.op(Op{Kind: "residual", Name: fmt.Sprintf("%d.down", l), Inputs: []string{a + "hq", a + "hq.exp", down + ".wq", down + ".wq.exp", a + "xmid"}, Work: n64 * d64 * f64, run: m.residual},
			out(fmt.Sprintf("act.%d.x", l+1), nd, i32Range))
	}
	rmsnorm("final.ln", fmt.Sprintf("act.%d.x", c.Layers), "act.final")
	g.op(Op{Kind: "head", Name: "head", Inputs: []string{"act.final.yq", "act.final.yq.exp", "head.wq", "head.wq.exp"}, Work: n64 * gpt.Vocab * d64, run: m.head},
		out("act.logits", []int{n, gpt.Vocab}, prod(d)), out("act.logits.exp", rows, expRange))
}

// out describes an intermediate tensor.
func out(name string, shape []int, r rng) TensorInfo {
	return TensorInfo{Name: name, Kind: Intermediate, Shape: shape, Min: r.lo, Max: r.hi}
}

// source adds a source; a state tensor's state name is its name.
func (g *Graph) source(name string, kind TensorKind, shape []int, r rng) {
	info := TensorInfo{Name: name, Kind: kind, Shape: shape, Min: r.lo, Max: r.hi, Producer: -1}
	if kind == StateIn {
		info.StateName = name
	}
	g.add(info)
}

// add appends a tensor; names are unique by construction.
func (g *Graph) add(info TensorInfo) {
	if _, dup := g.byName[info.Name]; dup {
		panic("gptref: duplicate tensor " + info.Name) // a bug in NewGraph, not an input error
	}
	g.byName[info.Name] = len(g.tensors)
	g.tensors = append(g.tensors, info)
}

func (g *Graph) op(o Op, outs ...TensorInfo) {
	for _, info := range outs {
		info.Producer = len(g.ops)
		g.add(info)
		o.Outputs = append(o.Outputs, info.Name)
	}
	g.ops = append(g.ops, o)
}
