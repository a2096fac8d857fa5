//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"strings"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
)

// The forward operator kinds of the GPT step (SPEC.md §20.10–§20.12):
// quantize, embed, rmsnorm, qkv, attn, residual, up, silu, head, loss.
// Each kernel computes exactly what its spec/gptref operator does: the
// products in 64×64 shared-memory tiles (4×4 outputs per invocation) with
// int64 sums (exact), every row reduction (maxima, sums) in one
// workgroup's shared memory, every whole-tensor reduction in two
// dispatches; no atomics, so no order.

func init() {
	gptKernels["quantize"] = gptKernel{scratch: func(gpt.Config, gptref.Op) uint64 { return 8 * quantizeParts }, record: recordQuantize}
	gptKernels["embed"] = gptKernel{record: recordEmbed}
	gptKernels["rmsnorm"] = gptKernel{record: recordRMSNorm}
	gptKernels["qkv"] = gptKernel{scratch: func(c gpt.Config, _ gptref.Op) uint64 { return 8 * uint64(c.Tokens()) * 3 * uint64(c.Dim) }, record: recordQKV}
	gptKernels["attn"] = gptKernel{scratch: func(c gpt.Config, _ gptref.Op) uint64 { return 8 * uint64(c.Tokens()) * uint64(c.Dim+4) }, record: recordAttn}
	gptKernels["residual"] = gptKernel{record: recordResidual}
	gptKernels["up"] = gptKernel{record: recordUp}
	gptKernels["silu"] = gptKernel{record: recordSiLU}
	gptKernels["head"] = gptKernel{record: recordHead}
	gptKernels["loss"] = gptKernel{scratch: func(c gpt.Config, _ gptref.Op) uint64 { return 8 * uint64(c.Tokens()) }, record: recordLoss}
}

// quantizeParts bounds the workgroups of the first pass of a whole-tensor
// Norm (each writes one partial maximum).
const quantizeParts = 256

// recordQuantize: quantize, Norm(P, −24, b) of a whole matrix.
func recordQuantize(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, scratch *buffer) error {
	x := bufs[op.Inputs[0]]
	n := k.elems(op.Inputs[0])
	parts := min(gptGroups(n, 256*16), quantizeParts)
	if err := k.run(r, "gpt_f_absmax", []int32{int32(n)}, parts, x, scratch); err != nil {
		return err
	}
	r.barrier()
	return k.run(r, "gpt_f_quantize", []int32{int32(n), int32(parts), int32(k.dims.bits), -24}, gptGroups(n, 256),
		x, scratch, bufs[op.Outputs[0]], bufs[op.Outputs[1]])
}

// recordEmbed: embed, elementwise.
func recordEmbed(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	m := k.dims
	return k.run(r, "gpt_f_embed", []int32{int32(m.n), int32(m.d), int32(m.t)}, gptGroups(m.n*m.d, 256),
		bufs[op.Inputs[0]], bufs[op.Inputs[1]], bufs[op.Inputs[2]], bufs[op.Outputs[0]])
}

// recordRMSNorm: rmsnorm, a workgroup per row.
func recordRMSNorm(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	m := k.dims
	o := op.Outputs
	return k.run(r, "gpt_f_rmsnorm", []int32{int32(m.n), int32(m.d), int32(m.bits)}, gptGroups(m.n, 1),
		bufs[op.Inputs[0]], bufs[o[0]], bufs[o[1]], bufs[o[2]], bufs[o[3]], bufs[o[4]])
}

// gemm records c = a·wᵀ of a [rows, kk] and w [outs, kk] (int64 sums).
func (k *gptKit) gemm(r *recorder, a, w, c *buffer, rows, kk, outs int) error {
	p, err := k.pipe("gpt_f_gemm", 3, 12)
	if err != nil {
		return err
	}
	s, err := k.set(p, a, w, c)
	if err != nil {
		return err
	}
	r.dispatch(p, s, []int32{int32(rows), int32(kk), int32(outs)}, uint32((outs+63)/64), gptGroups(rows, 64), 1)
	return nil
}

// normRow records NormRow of the column block [xOff, xOff + width) of the
// rows of x (row stride xStride) to q [rows, width] and qe [rows]: row r
// from exponent e1[e1Off + r] (e1 non-nil) + e2[0] (e2 non-nil) + eConst.
func (k *gptKit) normRow(r *recorder, x, e1, e2, q, qe *buffer, rows, width, xStride, xOff, e1Off, eConst int) error {
	use1, use2 := int32(1), int32(1)
	if e1 == nil {
		e1, use1 = x, 0
	}
	if e2 == nil {
		e2, use2 = x, 0
	}
	return k.run(r, "gpt_f_normrow", []int32{int32(rows), int32(width), int32(xStride), int32(xOff), int32(k.dims.bits), use1, int32(e1Off), use2, int32(eConst)},
		gptGroups(rows, 1), x, e1, e2, q, qe)
}

// recordQKV: qkv, the product to scratch [n, 3D], then NormRow of each
// column block.
func recordQKV(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, scratch *buffer) error {
	m := k.dims
	in, o := op.Inputs, op.Outputs
	if err := k.gemm(r, bufs[in[0]], bufs[in[2]], scratch, m.n, m.d, 3*m.d); err != nil {
		return err
	}
	r.barrier()
	for b := range 3 {
		if err := k.normRow(r, scratch, bufs[in[1]], bufs[in[3]], bufs[o[b]], bufs[o[3+b]], m.n, m.d, 3*m.d, b*m.d, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// recordAttn: attn, a workgroup per (window, head, row) to O in scratch,
// then NormRow of O's rows.
func recordAttn(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, scratch *buffer) error {
	m := k.dims
	in, o := op.Inputs, op.Outputs
	n8 := uint64(m.n) * 8
	base := uint64(m.n) * uint64(m.d+1) * 8 // after O and eO
	for i := range 3 {
		r.copy(bufs[in[3+i]], scratch, 0, base+uint64(i)*n8, n8)
	}
	r.barrier()
	push := []int32{int32(m.batch), int32(m.heads), int32(m.t), int32(m.d), int32(m.dh), int32(m.bits), int32(m.kappa)}
	if err := k.run(r, "gpt_f_attn", push, gptGroups(m.batch*m.heads*m.t, 1), bufs[in[0]], bufs[in[1]], bufs[in[2]], bufs[o[0]], scratch); err != nil {
		return err
	}
	r.barrier()
	return k.normRow(r, scratch, scratch, nil, bufs[o[1]], bufs[o[2]], m.n, m.d, m.d, 0, m.n*m.d, 0)
}

// epilogue records gpt_f_epilogue (mode 0 up, 1 residual, 2 head's
// exponents) on c.
func (k *gptKit) epilogue(r *recorder, c, ea, ew, x *buffer, cols, mode int) error {
	m := k.dims
	total := m.n * cols
	if mode == 2 {
		total = m.n
	}
	return k.run(r, "gpt_f_epilogue", []int32{int32(m.n), int32(cols), int32(mode)}, gptGroups(total, 256), c, ea, ew, x)
}

// recordResidual: residual (the out and down products), the product into
// the output, then the residual add in place.
func recordResidual(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	m := k.dims
	in, out := op.Inputs, bufs[op.Outputs[0]]
	kk := m.d
	if strings.HasSuffix(in[0], ".hq") {
		kk = m.f // the down product sums over d_ff
	}
	if err := k.gemm(r, bufs[in[0]], bufs[in[2]], out, m.n, kk, m.d); err != nil {
		return err
	}
	r.barrier()
	return k.epilogue(r, out, bufs[in[1]], bufs[in[3]], bufs[in[4]], m.d, 1)
}

// recordUp: up, the product into u, then its scaling in place.
func recordUp(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	m := k.dims
	in, u := op.Inputs, bufs[op.Outputs[0]]
	if err := k.gemm(r, bufs[in[0]], bufs[in[2]], u, m.n, m.d, m.f); err != nil {
		return err
	}
	r.barrier()
	return k.epilogue(r, u, bufs[in[1]], bufs[in[3]], u, m.f, 0)
}

// recordSiLU: silu, a workgroup per row.
func recordSiLU(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	m := k.dims
	return k.run(r, "gpt_f_silu", []int32{int32(m.n), int32(m.f), int32(m.bits)}, gptGroups(m.n, 1),
		bufs[op.Inputs[0]], bufs[op.Outputs[0]], bufs[op.Outputs[1]])
}

// recordHead: head, the product and the logits' row exponents.
func recordHead(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	m := k.dims
	in, o := op.Inputs, op.Outputs
	if err := k.gemm(r, bufs[in[0]], bufs[in[2]], bufs[o[0]], m.n, m.d, gpt.Vocab); err != nil {
		return err
	}
	return k.epilogue(r, bufs[o[1]], bufs[in[1]], bufs[in[3]], bufs[o[1]], 1, 2)
}

// recordLoss: loss, a workgroup per row (an invocation per byte value),
// then the rows' losses summed by one workgroup.
func recordLoss(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, scratch *buffer) error {
	m := k.dims
	in, o := op.Inputs, op.Outputs
	if err := k.run(r, "gpt_f_loss", []int32{int32(m.n)}, gptGroups(m.n, 1),
		bufs[in[0]], bufs[in[1]], bufs[in[2]], bufs[o[0]], bufs[o[1]], scratch); err != nil {
		return err
	}
	r.barrier()
	return k.run(r, "gpt_f_losssum", []int32{int32(m.n)}, 1, scratch, bufs[o[2]])
}
