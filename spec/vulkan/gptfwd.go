//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"github.com/beluga-compute/beluga/spec/gptref"
)

// The forward operator kinds of the GPT step (SPEC.md §20.10–§20.12):
// quantize, embed, rmsnorm, qkv, attn, residual, up, silu, head, loss.
// Each kernel computes exactly what its spec/gptref operator does.

func init() {
	gptKernels["embed"] = gptKernel{record: recordEmbed}
}

// recordEmbed: embed, elementwise.
func recordEmbed(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, _ *buffer) error {
	m := k.dims
	return k.run(r, "gpt_f_embed", []int32{int32(m.n), int32(m.d), int32(m.t)}, gptGroups(m.n*m.d, 256),
		bufs[op.Inputs[0]], bufs[op.Inputs[1]], bufs[op.Inputs[2]], bufs[op.Outputs[0]])
}
