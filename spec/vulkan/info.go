package vulkan

import "fmt"

// DeviceInfo describes one Vulkan physical device.
type DeviceInfo struct {
	Index int    // position in Devices()
	Name  string // e.g. "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)"
	// Type is "discrete GPU", "integrated GPU", "virtual GPU", "CPU" or
	// "other"; GPU is true for the first two, the only ones automatic
	// backend selection takes.
	Type                  string
	GPU                   bool
	APIVersion            string // the device's Vulkan version, "1.3.230"
	DriverVersion         uint32 // vendor-encoded
	VendorID, DeviceID    uint32
	ShaderInt64           bool
	MaxStorageBufferRange uint64 // bytes one buffer binding may span
	MaxSharedMemory       uint32 // bytes of shared memory per workgroup
	MaxWorkGroupCount     [3]uint32
	StorageAlignment      uint64 // minStorageBufferOffsetAlignment
	DeviceLocalBytes      uint64 // summed device-local heaps
	Extensions            int    // device extensions offered
	IntegerDotProduct     bool   // VK_KHR_shader_integer_dot_product
	// IntegerDotAccelerated: the device reports its packed 4×8-bit
	// (signed, unsigned and mixed) dot products as accelerated, so the
	// MLP products use them by default (WithIntegerDot).
	IntegerDotAccelerated bool
	CooperativeMatrix     bool // VK_KHR_cooperative_matrix
	// Unusable says why the backend cannot run on the device ("" if it
	// can).
	Unusable string
}

// String is the device in one line: name, type, Vulkan version and, if
// the backend cannot use it, why.
func (i DeviceInfo) String() string {
	s := fmt.Sprintf("%s (%s, Vulkan %s)", i.Name, i.Type, i.APIVersion)
	if i.Unusable != "" {
		s += ": unusable, " + i.Unusable
	}
	return s
}
