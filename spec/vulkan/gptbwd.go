//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"fmt"
	"strings"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
)

// The backward and optimizer operator kinds of the GPT step (SPEC.md
// §20.13–§20.14): linear.bwd, qkv.bwd, silu.bwd, rmsnorm.bwd, add,
// attn.bwd, embed.bwd, adamw.norm and adamw. Each kernel computes exactly
// what its spec/gptref operator does (backward.go, adamw.go).
//
// The per-tensor quantisations (Norm, NormParts, Add's common exponent,
// the global norm) need tensor-wide maxima and sums: a first dispatch
// reduces each workgroup's share in shared memory, a second one-workgroup
// dispatch reduces those partial results (gpt_b_reduce, gpt_b_gnorm*).
// Integer maxima, minima and saturating sums of non-negative terms do not
// depend on the order, so neither does any result; no atomics are used.
//
// An operator's scratch buffer starts with int64 slots (gpt_bwd.glsl names
// the same ones) that carry its scalars from dispatch to dispatch: input
// exponents (copied in with vkCmdCopyBuffer), maxima, and the output
// exponents, computed on the device by gpt_b_exps and copied out into the
// graph's [1] tensors. After the slots come four regions for partial
// results of reductions, then the operator's intermediate tensors.

// Scratch slots (int64 words) and regions.
const (
	bsIn0   = 0  // input exponents
	bsMax0  = 8  // max |x| of tensors
	bsE0    = 12 // maxima and minima of per-row values
	bsOut0  = 16 // output exponents
	bsParts = 64 // 4 regions of bsPartN partial results
	bsPartN = 256
	bsData  = bsParts + 4*bsPartN // the operator's own tensors
)

// Modes of gpt_b_reduce.
const (
	reduceAbsMax = 0
	reduceMax    = 1
	reduceMin    = 2
	reduceUMax   = 3
)

// Modes of gpt_b_exps, one per formula block (see the shader).
const (
	expsLinear = iota
	expsQKV
	expsRMSNorm
	expsAdd
	expsAttnDO
	expsAttnDS
)

func init() {
	gptKernels["linear.bwd"] = gptKernel{scratch: linearBwdScratch, record: recordLinearBwd}
	gptKernels["qkv.bwd"] = gptKernel{scratch: qkvBwdScratch, record: recordQKVBwd}
	gptKernels["rmsnorm.bwd"] = gptKernel{scratch: slotsScratch, record: recordRMSNormBwd}
	gptKernels["add"] = gptKernel{scratch: slotsScratch, record: recordAdd}
	gptKernels["silu.bwd"] = gptKernel{record: recordSiLUBwd}
	gptKernels["attn.bwd"] = gptKernel{scratch: attnBwdScratch, record: recordAttnBwd}
	gptKernels["embed.bwd"] = gptKernel{record: recordEmbedBwd}
	gptKernels["adamw.norm"] = gptKernel{scratch: normScratch, record: recordAdamWNorm}
	gptKernels["adamw"] = gptKernel{scratch: slotsScratch, record: recordAdamW}
}

// bwd records one backward operator: the kit, the command buffer and the
// operator's scratch buffer.
type bwd struct {
	k *gptKit
	r *recorder
	s *buffer
}

// dispatch records shader over groups (x, y) binding bufs.
func (b *bwd) dispatch(shader string, push []int32, x, y uint32, bufs ...*buffer) error {
	p, err := b.k.pipe(shader, len(bufs), uint32(4*len(push)))
	if err != nil {
		return err
	}
	set, err := b.k.set(p, bufs...)
	if err != nil {
		return err
	}
	b.r.dispatch(p, set, push, x, y, 1)
	return nil
}

// run records an elementwise shader over n items, 256 per workgroup.
func (b *bwd) run(shader string, push []int32, n int, bufs ...*buffer) error {
	return b.dispatch(shader, push, gptGroups(n, 256), 1, bufs...)
}

// exp copies the [1] tensor src into slot.
func (b *bwd) exp(src *buffer, slot int) { b.r.copy(src, b.s, 0, uint64(slot)*8, 8) }

// out copies slot into the [1] tensor dst.
func (b *bwd) out(slot int, dst *buffer) { b.r.copy(b.s, dst, uint64(slot)*8, 0, 8) }

// red is one reduction (gpt_b_reduce): mode over the n values of src
// from element off, into slot; a two-pass one keeps its partial results
// in region part (0–3) of the scratch.
type red struct {
	src                      *buffer
	off, n, mode, slot, part int
}

// reduce records the reductions rs: every first pass, one barrier, every
// second pass. The caller puts a barrier before the slots are read.
func (b *bwd) reduce(rs ...red) error {
	groups := func(x red) int { return max(1, min((x.n+1023)/1024, bsPartN)) }
	second := false
	for _, x := range rs {
		dst := x.slot
		if g := groups(x); g > 1 {
			dst, second = bsParts+x.part*bsPartN, true
		}
		if err := b.dispatch("gpt_b_reduce", []int32{int32(x.n), int32(x.off), int32(dst), int32(x.mode)}, uint32(groups(x)), 1, x.src, b.s); err != nil {
			return err
		}
	}
	if !second {
		return nil
	}
	b.r.barrier()
	for _, x := range rs {
		g := groups(x)
		if g == 1 {
			continue
		}
		mode := x.mode
		if mode == reduceAbsMax {
			mode = reduceUMax // the partial results are magnitudes
		}
		if err := b.dispatch("gpt_b_reduce", []int32{int32(g), int32(bsParts + x.part*bsPartN), int32(x.slot), int32(mode)}, 1, 1, b.s, b.s); err != nil {
			return err
		}
	}
	return nil
}

// exps records gpt_b_exps in mode.
func (b *bwd) exps(mode int) error {
	return b.dispatch("gpt_b_exps", []int32{int32(mode), int32(b.k.dims.bits)}, 1, 1, b.s)
}

// gemm records C = A·B (gpt_b_gemm): C [m, n], B [kk, n] from element
// bOff, A [m, kk] from element aOff, or stored as [kk, m] when aTrans.
func (b *bwd) gemm(a *buffer, aOff int, aTrans bool, bb *buffer, bOff int, c *buffer, m, n, kk int) error {
	t := int32(0)
	if aTrans {
		t = 1
	}
	return b.dispatch("gpt_b_gemm", []int32{int32(m), int32(n), int32(kk), int32(aOff), int32(bOff), t},
		gptGroups(n, 64), gptGroups(m, 64), a, bb, c)
}

// param returns the parameter named name, or the one whose quantised
// weights are the tensor name (P + ".wq").
func param(c gpt.Config, name string) (gpt.Param, error) {
	for _, p := range c.Params() {
		if p.Name == strings.TrimSuffix(name, ".wq") {
			return p, nil
		}
	}
	return gpt.Param{}, fmt.Errorf("no parameter for the tensor %s", name)
}

func slotsScratch(gpt.Config, gptref.Op) uint64 { return 8 * bsData }

func linearBwdScratch(c gpt.Config, op gptref.Op) uint64 {
	p, err := param(c, op.Inputs[4])
	if err != nil {
		return 8 * bsData
	}
	return 8 * uint64(bsData+c.Tokens()*(p.Rows+p.In))
}

// recordLinearBwd: linear.bwd, (gq, e_g) = Norm(g, e, b) then the
// product's backward (productBackward): x' aligned to E = max_r e_x[r],
// dW = gqᵀ·x', dx = gq·Wq. Inputs g, g.exp, xq, xq.exp, Wq, Wq.exp;
// outputs dW, dW.exp, dx, dx.exp.
func recordLinearBwd(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, s *buffer) error {
	p, err := param(k.cfg, op.Inputs[4])
	if err != nil {
		return err
	}
	in := func(i int) *buffer { return bufs[op.Inputs[i]] }
	outb := func(i int) *buffer { return bufs[op.Outputs[i]] }
	n, rows, cols := k.dims.n, p.Rows, p.In
	gq, xa := bsData, bsData+n*rows
	b := &bwd{k, r, s}
	b.exp(in(1), bsIn0)
	b.exp(in(5), bsIn0+1)
	if err := b.reduce(red{in(0), 0, n * rows, reduceAbsMax, bsMax0, 0}, red{in(3), 0, n, reduceMax, bsE0, 1}); err != nil {
		return err
	}
	r.barrier()
	if err := b.exps(expsLinear); err != nil {
		return err
	}
	if err := b.run("gpt_b_norm", []int32{int32(n * rows), int32(gq), bsMax0, int32(k.dims.bits)}, n*rows, in(0), s); err != nil {
		return err
	}
	if err := b.run("gpt_b_align", []int32{int32(n), int32(cols), int32(xa), bsE0}, n*cols, in(2), in(3), s); err != nil {
		return err
	}
	r.barrier()
	return b.productBwd(gq, xa, in(4), outb(0), outb(1), outb(2), outb(3), n, rows, cols)
}

// productBwd records dW = gqᵀ·x' and dx = gq·Wq from gq [n, rows] and
// x' [n, cols] in the scratch, and copies the exponents in the slots
// bsOut0 (dW) and bsOut0 + 1 (dx) out; the slots and the scratch tensors
// are ready (behind a barrier).
func (b *bwd) productBwd(gq, xa int, wq, dw, dwExp, dx, dxExp *buffer, n, rows, cols int) error {
	if err := b.gemm(b.s, gq, true, b.s, xa, dw, rows, cols, n); err != nil {
		return err
	}
	if err := b.gemm(b.s, gq, false, wq, 0, dx, n, cols, rows); err != nil {
		return err
	}
	b.out(bsOut0, dwExp)
	b.out(bsOut0+1, dxExp)
	return nil
}

func qkvBwdScratch(c gpt.Config, _ gptref.Op) uint64 {
	return 8 * uint64(bsData+c.Tokens()*4*c.Dim)
}

// recordQKVBwd: qkv.bwd, (gq, e_g) = NormParts of [dQ | dK | dV] to b
// bits, then the qkv product's backward. Inputs dQ, dQ.exp, dK, dK.exp,
// dV, dV.exp, y1q, y1q.exp, qkvq, qkvq.exp; outputs dW, dW.exp, dy1,
// dy1.exp.
func recordQKVBwd(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, s *buffer) error {
	in := func(i int) *buffer { return bufs[op.Inputs[i]] }
	outb := func(i int) *buffer { return bufs[op.Outputs[i]] }
	n, d := k.dims.n, k.dims.d
	gq, xa := bsData, bsData+n*3*d
	b := &bwd{k, r, s}
	rs := []red{{in(7), 0, n, reduceMax, bsE0, 3}}
	for i := range 3 {
		b.exp(in(2*i+1), bsIn0+i)
		rs = append(rs, red{in(2 * i), 0, n * d, reduceAbsMax, bsMax0 + i, i})
	}
	b.exp(in(9), bsIn0+3)
	if err := b.reduce(rs...); err != nil {
		return err
	}
	r.barrier()
	if err := b.exps(expsQKV); err != nil {
		return err
	}
	if err := b.run("gpt_b_align", []int32{int32(n), int32(d), int32(xa), bsE0}, n*d, in(6), in(7), s); err != nil {
		return err
	}
	r.barrier()
	if err := b.run("gpt_b_parts", []int32{int32(n), int32(d), int32(gq), int32(k.dims.bits)}, n*3*d, in(0), in(2), in(4), s); err != nil {
		return err
	}
	r.barrier()
	return b.productBwd(gq, xa, in(8), outb(0), outb(1), outb(2), outb(3), n, 3*d, d)
}

// recordRMSNormBwd: rmsnorm.bwd, q = Norm(d, e, 24), s_min = min_r s_r,
// then a workgroup per row (gpt_b_rms). Inputs d, d.exp, y, rho, s;
// outputs dx, dx.exp.
func recordRMSNormBwd(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, s *buffer) error {
	in := func(i int) *buffer { return bufs[op.Inputs[i]] }
	n, d := k.dims.n, k.dims.d
	b := &bwd{k, r, s}
	b.exp(in(1), bsIn0)
	if err := b.reduce(red{in(0), 0, n * d, reduceAbsMax, bsMax0, 0}, red{in(4), 0, n, reduceMin, bsE0, 1}); err != nil {
		return err
	}
	r.barrier()
	if err := b.exps(expsRMSNorm); err != nil {
		return err
	}
	if err := b.dispatch("gpt_b_rms", []int32{int32(n), int32(d)}, gptGroups(n, 1), 1, in(0), in(2), in(3), in(4), s, bufs[op.Outputs[0]]); err != nil {
		return err
	}
	r.barrier()
	b.out(bsOut0, bufs[op.Outputs[1]])
	return nil
}

// recordAdd: add, Add((x, ex), (v, ey)) of §20.9. Inputs x, x.exp, v,
// v.exp; outputs the sum and its exponent.
func recordAdd(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, s *buffer) error {
	in := func(i int) *buffer { return bufs[op.Inputs[i]] }
	n := k.dims.n * k.dims.d
	b := &bwd{k, r, s}
	b.exp(in(1), bsIn0)
	b.exp(in(3), bsIn0+1)
	if err := b.reduce(red{in(0), 0, n, reduceAbsMax, bsMax0, 0}, red{in(2), 0, n, reduceAbsMax, bsMax0 + 1, 1}); err != nil {
		return err
	}
	r.barrier()
	if err := b.exps(expsAdd); err != nil {
		return err
	}
	r.barrier()
	if err := b.run("gpt_b_add", []int32{int32(n)}, n, in(0), in(2), s, bufs[op.Outputs[0]]); err != nil {
		return err
	}
	b.out(bsOut0, bufs[op.Outputs[1]])
	return nil
}

// recordSiLUBwd: silu.bwd, elementwise. Inputs dh, dh.exp, u; outputs
// du, du.exp.
func recordSiLUBwd(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	n := k.dims.n * k.dims.f
	return k.run(r, "gpt_b_silu", []int32{int32(n)}, gptGroups(n, 256),
		bufs[op.Inputs[0]], bufs[op.Inputs[1]], bufs[op.Inputs[2]], bufs[op.Outputs[0]], bufs[op.Outputs[1]])
}

func attnBwdScratch(c gpt.Config, _ gptref.Op) uint64 {
	return 8 * uint64(bsData+c.Tokens()*c.Dim+2*c.Batch*c.Heads*c.Context*c.Context)
}

// recordAttnBwd: attn.bwd. (dOq, e_o) = Norm(dO, e, b); dP per (window,
// head, i, j) (gpt_b_attn_dp) and dV per element (gpt_b_attn_dv); δ and
// dS per (window, head, row) (gpt_b_attn_ds); dS
// quantised over the whole layer and aligned to EK and to EQ
// (gpt_b_attn_dsq); dQ and dK (gpt_b_attn_dqk). Inputs dO,
// dO.exp, P, Q, K, V, Q.exp, K.exp, V.exp; outputs dQ, dQ.exp, dK, dK.exp,
// dV, dV.exp.
func recordAttnBwd(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, s *buffer) error {
	in := func(i int) *buffer { return bufs[op.Inputs[i]] }
	outb := func(i int) *buffer { return bufs[op.Outputs[i]] }
	m := k.dims
	n, d := m.n, m.d
	doq, ds := bsData, bsData+n*d
	nds := m.batch * m.heads * m.t * m.t
	b := &bwd{k, r, s}
	b.exp(in(1), bsIn0)
	rs := []red{{in(0), 0, n * d, reduceAbsMax, bsMax0, 0}}
	for i := range 3 { // EQ, EK, EV
		rs = append(rs, red{in(6 + i), 0, n, reduceMax, bsE0 + i, 1 + i})
	}
	if err := b.reduce(rs...); err != nil {
		return err
	}
	r.barrier()
	if err := b.exps(expsAttnDO); err != nil {
		return err
	}
	if err := b.run("gpt_b_norm", []int32{int32(n * d), int32(doq), bsMax0, int32(m.bits)}, n*d, in(0), s); err != nil {
		return err
	}
	r.barrier()
	shape := []int32{int32(m.batch), int32(m.heads), int32(m.t), int32(d), int32(m.dh)}
	if err := b.run("gpt_b_attn_dp", append(shape[:5:5], int32(doq), int32(ds)), nds, s, in(5), in(8)); err != nil {
		return err
	}
	if err := b.run("gpt_b_attn_dv", append(shape[:5:5], int32(doq)), n*d, s, in(2), outb(4)); err != nil {
		return err
	}
	r.barrier()
	rows := m.batch * m.heads * m.t
	if err := b.run("gpt_b_attn_ds", []int32{int32(rows), int32(m.t), int32(ds), int32(m.bits), int32(m.iota)}, rows, s, in(2)); err != nil {
		return err
	}
	r.barrier()
	if err := b.reduce(red{s, ds, nds, reduceAbsMax, bsMax0 + 1, 0}); err != nil {
		return err
	}
	r.barrier()
	if err := b.exps(expsAttnDS); err != nil {
		return err
	}
	dsq := ds + nds
	if err := b.run("gpt_b_attn_dsq", []int32{int32(m.batch), int32(m.heads), int32(m.t), int32(ds), int32(dsq), int32(m.bits)}, nds, s, in(6), in(7)); err != nil {
		return err
	}
	r.barrier()
	// dQ from K and the dS aligned to EK; dK from Q and the dS aligned to EQ.
	if err := b.run("gpt_b_attn_dqk", append(shape[:5:5], int32(ds), 0), n*d, s, in(4), outb(0)); err != nil {
		return err
	}
	if err := b.run("gpt_b_attn_dqk", append(shape[:5:5], int32(dsq), 1), n*d, s, in(3), outb(2)); err != nil {
		return err
	}
	r.barrier()
	b.out(bsOut0, outb(1))
	b.out(bsOut0+1, outb(3))
	b.out(bsOut0+2, outb(5))
	return nil
}

// recordEmbedBwd: embed.bwd, dtok_emb and dpos_emb, both at the residual
// gradient's exponent. Inputs dx, dx.exp, tokens; outputs dtok, dtok.exp,
// dpos, dpos.exp.
func recordEmbedBwd(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	in := func(i int) *buffer { return bufs[op.Inputs[i]] }
	outb := func(i int) *buffer { return bufs[op.Outputs[i]] }
	m := k.dims
	b := &bwd{k, r, nil}
	if err := b.dispatch("gpt_b_embtok", []int32{int32(m.n), int32(m.d)}, uint32((m.d+255)/256), gpt.Vocab, in(0), in(2), outb(0)); err != nil {
		return err
	}
	if err := b.run("gpt_b_embpos", []int32{int32(m.batch), int32(m.t), int32(m.d)}, m.t*m.d, in(0), outb(2)); err != nil {
		return err
	}
	r.copy(in(1), outb(1), 0, 0, 8)
	r.copy(in(1), outb(3), 0, 0, 8)
	return nil
}

// normGroups is the number of first-pass workgroups of the global norm
// over a parameter of n values.
func normGroups(n int) int { return max(1, min((n+1023)/1024, 64)) }

func normScratch(c gpt.Config, _ gptref.Op) uint64 {
	total := 0
	for _, p := range c.Params() {
		total += normGroups(p.Rows * p.In)
	}
	return 8 * uint64(bsData+total)
}

// recordAdamWNorm: adamw.norm, ν of §20.14.2 over every parameter's
// gradient: per parameter saturating partial sums of t² (gpt_b_gnorm),
// then their saturating sum and its square root (gpt_b_gnormfin). Inputs
// grad.P, grad.P.exp for each P; output adamw.norm.
func recordAdamWNorm(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, s *buffer) error {
	params := k.cfg.Params()
	if len(op.Inputs) != 2*len(params) {
		return fmt.Errorf("adamw.norm takes %d inputs, the configuration has %d parameters", len(op.Inputs), len(params))
	}
	b := &bwd{k, r, s}
	off := bsData
	for i, p := range params {
		n := p.Rows * p.In
		groups := normGroups(n)
		if err := b.dispatch("gpt_b_gnorm", []int32{int32(n), int32(k.dims.n), int32(off)}, uint32(groups), 1,
			bufs[op.Inputs[2*i]], bufs[op.Inputs[2*i+1]], s); err != nil {
			return err
		}
		off += groups
	}
	r.barrier()
	return b.dispatch("gpt_b_gnormfin", []int32{int32(off - bsData), bsData}, 1, 1, s, bufs[op.Outputs[0]])
}

// recordAdamW: adamw for one parameter, the moments (gpt_b_adam_m), then
// the weights (gpt_b_adam_w) from the new moments. Inputs P, P.m, P.v,
// grad.P, grad.P.exp, adamw.norm; outputs next.P, next.P.m, next.P.v.
func recordAdamW(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, s *buffer) error {
	in := func(i int) *buffer { return bufs[op.Inputs[i]] }
	outb := func(i int) *buffer { return bufs[op.Outputs[i]] }
	if k.step == nil {
		return fmt.Errorf("adamw needs the step's learning rate on the device")
	}
	c := &k.cfg
	p, err := param(*c, op.Inputs[0])
	if err != nil {
		return err
	}
	n := p.Rows * p.In
	b := &bwd{k, r, s}
	b.exp(in(4), bsIn0)
	b.exp(in(5), bsIn0+1)
	r.copy(k.step, s, 8, 8*(bsIn0+2), 8) // LR(t)
	r.barrier()
	if err := b.run("gpt_b_adam_m", []int32{int32(n), int32(k.dims.n), int32(c.Beta1.Num), int32(c.Beta1.Shift), int32(c.Beta2.Num), int32(c.Beta2.Shift)},
		n, in(1), in(2), in(3), s, outb(1), outb(2)); err != nil {
		return err
	}
	r.barrier()
	return b.run("gpt_b_adam_w", []int32{int32(n), int32(c.Eps), int32(c.WeightDecay.Num), int32(c.WeightDecay.Shift), int32(c.LRShift)},
		n, in(0), outb(1), outb(2), s, outb(0))
}
