package cli

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

const backendHelp = "where MLP steps run: cpu, vulkan (a Vulkan device, lavapipe included; GPT jobs refused: not yet supported) " +
	"or auto (a Vulkan GPU if one works, else the CPU; a GPT always on the CPU); the digest never changes"

// chooseBackend settles the backend for training s: a GPT is refused on
// vulkan and stays on the CPU under auto.
func chooseBackend(b model.Backend, s *spec.Spec) (model.Chosen, error) {
	if s != nil && s.IsGPT() {
		if b == model.BackendVulkan {
			return model.Chosen{}, &exitError{code: exitUsage, err: fmt.Errorf("--backend vulkan: %w: the Vulkan backend trains MLP jobs only for now; use --backend cpu or auto for a GPT", spec.ErrUnsupported)}
		}
		b = model.BackendCPU
	}
	c, err := model.ResolveBackend(b)
	if err != nil {
		return c, fmt.Errorf("--backend %s: %w", b, err)
	}
	return c, nil
}
