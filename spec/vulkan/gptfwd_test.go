//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import "testing"

// TestGPTForwardKinds: every forward operator kind's kernel gives, on
// random configurations, exactly the reference's outputs.
func TestGPTForwardKinds(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"quantize", "embed", "rmsnorm", "qkv", "attn", "residual", "up", "silu", "head", "loss"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			checkGPTKind(t, kind)
		})
	}
}
