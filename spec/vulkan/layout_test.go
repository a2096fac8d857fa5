//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"testing"
	"unsafe"
)

// TestLayouts checks the hand-declared structures against the sizes and
// offsets of vulkan_core.h (measured with a C compiler on 64-bit Linux):
// a mismatch would be memory corruption in the driver.
func TestLayouts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"VkPhysicalDeviceLimits", unsafe.Sizeof(physicalDeviceLimits{}), 504},
		{"VkPhysicalDeviceProperties", unsafe.Sizeof(physicalDeviceProperties{}), 824},
		{"VkPhysicalDeviceFeatures", unsafe.Sizeof(physicalDeviceFeatures{}), 220},
		{"VkComputePipelineCreateInfo", unsafe.Sizeof(computePipelineCreateInfo{}), 96},
		{"VkWriteDescriptorSet", unsafe.Sizeof(writeDescriptorSet{}), 64},
		{"VkPhysicalDeviceMemoryProperties", unsafe.Sizeof(physicalDeviceMemoryProperties{}), 520},
		{"VkBufferCreateInfo", unsafe.Sizeof(bufferCreateInfo{}), 56},
		{"VkPhysicalDeviceProperties2", unsafe.Sizeof(physicalDeviceProperties2{}), 840},
		{"VkPhysicalDeviceShaderIntegerDotProductProperties", unsafe.Sizeof(integerDotProperties{}), 136},
		{"VkPhysicalDeviceShaderIntegerDotProductFeatures", unsafe.Sizeof(integerDotFeatures{}), 24},
		{"limits.maxComputeSharedMemorySize", unsafe.Offsetof(physicalDeviceLimits{}.maxComputeSharedMemorySize), 216},
		{"limits.minStorageBufferOffsetAlignment", unsafe.Offsetof(physicalDeviceLimits{}.minStorageBufferOffsetAlignment), 328},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, vulkan_core.h has %d", c.name, c.got, c.want)
		}
	}
}
