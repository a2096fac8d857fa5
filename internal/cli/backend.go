package cli

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

const backendHelp = "where training steps run, MLP or GPT: cpu, vulkan (a Vulkan device, lavapipe included) " +
	"or auto (a Vulkan GPU if one works and can take the job, else the CPU); the digest never changes"

// chooseBackend settles the backend for training s (either model kind
// trains on every backend).
func chooseBackend(b model.Backend, _ *spec.Spec) (model.Chosen, error) {
	c, err := model.ResolveBackend(b)
	if err != nil {
		return c, fmt.Errorf("--backend %s: %w", b, err)
	}
	return c, nil
}
