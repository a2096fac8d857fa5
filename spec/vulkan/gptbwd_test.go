//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import "testing"

// TestGPTBackwardKinds: every backward and optimizer operator kind's
// kernel gives, on random configurations (one with weights anywhere in
// int32, one past the shaders' tiles and workgroups), exactly the
// reference's outputs, exponents included.
func TestGPTBackwardKinds(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"linear.bwd", "qkv.bwd", "silu.bwd", "rmsnorm.bwd", "add", "attn.bwd", "embed.bwd", "adamw.norm", "adamw"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			checkGPTKind(t, kind)
		})
	}
}
