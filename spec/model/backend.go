package model

import (
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// Backend says where a Runner's training steps run. Every backend gives
// the same bits; only the speed differs.
type Backend string

// Backends.
const (
	// BackendCPU runs on the CPU: spec/engine for an MLP, spec/gpt for a
	// GPT. The default.
	BackendCPU Backend = "cpu"
	// BackendVulkan runs a job, MLP or GPT, on a Vulkan device
	// (spec/vulkan): the one WithVulkanDevice gives, else the best the
	// machine has, a CPU device such as lavapipe included.
	BackendVulkan Backend = "vulkan"
	// BackendAuto runs a job, MLP or GPT, on a Vulkan GPU (discrete or
	// integrated, never a CPU device) when one works and can take the
	// job, else on the CPU.
	BackendAuto Backend = "auto"
)

// ParseBackend reads a backend name: auto, cpu or vulkan.
func ParseBackend(name string) (Backend, error) {
	switch b := Backend(name); b {
	case BackendAuto, BackendCPU, BackendVulkan:
		return b, nil
	}
	return "", fmt.Errorf("backend %q: want auto, cpu or vulkan", name)
}

// WithBackend selects the backend (default BackendCPU).
func WithBackend(b Backend) Option { return func(o *options) { o.backend = b } }

// WithVulkanDevice runs Vulkan steps on d, which the caller keeps open
// for the runner's life and closes after it.
func WithVulkanDevice(d *vulkan.Device) Option { return func(o *options) { o.device = d } }

// Chosen is what ResolveBackend picked.
type Chosen struct {
	Backend Backend        // BackendCPU or BackendVulkan
	auto    bool           // chosen by BackendAuto: a job the device cannot take trains on the CPU
	Device  *vulkan.Device // the open device for BackendVulkan (the caller closes it)
	// Describe is a line for the user: "vulkan: NVIDIA H200 (discrete
	// GPU, Vulkan 1.4.312)" or "cpu (avx512vnni)", with why auto fell
	// back to the CPU.
	Describe string
}

// ResolveBackend settles b once for a process that trains several jobs
// (or wants to say which backend trains before it starts): auto becomes
// vulkan with an open GPU device, or cpu; vulkan opens the best device
// and fails (wrapping vulkan.ErrNoDevice) when there is none.
func ResolveBackend(b Backend) (Chosen, error) {
	cpu := Chosen{Backend: BackendCPU, Describe: "cpu (" + kernel.Best().Name() + ")"}
	switch b {
	case BackendCPU, "":
		return cpu, nil
	case BackendVulkan, BackendAuto:
	default:
		return Chosen{}, fmt.Errorf("model: backend %q: want auto, cpu or vulkan", b)
	}
	var opts []vulkan.DeviceOption
	if b == BackendAuto {
		opts = append(opts, vulkan.GPUOnly())
	}
	d, err := vulkan.Open(opts...)
	if err != nil {
		if b == BackendAuto && errors.Is(err, vulkan.ErrNoDevice) {
			cpu.Describe += " — no Vulkan GPU (" + err.Error() + ")"
			return cpu, nil
		}
		return Chosen{}, err
	}
	return Chosen{Backend: BackendVulkan, auto: b == BackendAuto, Device: d, Describe: "vulkan: " + d.Info().String()}, nil
}

// Options returns the runner options of the choice. Under auto, a job
// the device cannot take (too large for its buffers or memory) trains on
// the CPU; under vulkan it fails.
func (c Chosen) Options() []Option {
	if c.Backend == BackendVulkan && c.Device != nil {
		b := BackendVulkan
		if c.auto {
			b = BackendAuto
		}
		return []Option{WithBackend(b), WithVulkanDevice(c.Device)}
	}
	return []Option{WithBackend(c.Backend)}
}

// Name is the backend as solvers report it and the coordinator records
// it: "vulkan (<device name>)" or "cpu (<kernel>)".
func (c Chosen) Name() string {
	if c.Device != nil {
		return "vulkan (" + c.Device.Info().Name + ")"
	}
	return "cpu (" + kernel.Best().Name() + ")"
}

// Close closes the chosen device, if any.
func (c Chosen) Close() error {
	if c.Device != nil {
		return c.Device.Close()
	}
	return nil
}

// vulkanFor says whether s trains on Vulkan under o.
func vulkanFor(s *spec.Spec, o options) (bool, error) {
	switch o.backend {
	case BackendVulkan, BackendAuto:
		return true, nil
	case BackendCPU, "":
		return false, nil
	}
	return false, fmt.Errorf("model: backend %q: want auto, cpu or vulkan", o.backend)
}
