package model

// RunnerBackend says where r trains: BackendVulkan for a runner on a
// Vulkan device, else BackendCPU. Under BackendAuto a job the device
// cannot take trains on the CPU: this tells which one NewRunner built.
func RunnerBackend(r Runner) Backend {
	switch r.(type) {
	case *vulkanRunner, *vulkanGPTRunner:
		return BackendVulkan
	}
	return BackendCPU
}
