//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

// The small part of the Vulkan C API the backend uses, declared by hand
// (no Go binding is available): handles, the structures passed to the
// driver laid out exactly as C lays them out on 64-bit platforms, and
// calls through purego.SyscallN. Pointers inside structures are
// unsafe.Pointer so the objects they point to live on the heap for the
// duration of the call (SyscallN is go:uintptrescapes, and so is call).
// Floating-point fields are declared as their 32-bit patterns: spec/...
// is float-free.

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// vkResult is VkResult.
type vkResult int32

var resultNames = map[vkResult]string{
	0: "VK_SUCCESS", 1: "VK_NOT_READY", 2: "VK_TIMEOUT", 3: "VK_EVENT_SET", 4: "VK_EVENT_RESET", 5: "VK_INCOMPLETE",
	-1: "VK_ERROR_OUT_OF_HOST_MEMORY", -2: "VK_ERROR_OUT_OF_DEVICE_MEMORY", -3: "VK_ERROR_INITIALIZATION_FAILED",
	-4: "VK_ERROR_DEVICE_LOST", -5: "VK_ERROR_MEMORY_MAP_FAILED", -6: "VK_ERROR_LAYER_NOT_PRESENT",
	-7: "VK_ERROR_EXTENSION_NOT_PRESENT", -8: "VK_ERROR_FEATURE_NOT_PRESENT", -9: "VK_ERROR_INCOMPATIBLE_DRIVER",
	-10: "VK_ERROR_TOO_MANY_OBJECTS", -11: "VK_ERROR_FORMAT_NOT_SUPPORTED", -12: "VK_ERROR_FRAGMENTED_POOL",
	-13: "VK_ERROR_UNKNOWN", -1000069000: "VK_ERROR_OUT_OF_POOL_MEMORY", -1000072003: "VK_ERROR_INVALID_EXTERNAL_HANDLE",
	-1000161000: "VK_ERROR_FRAGMENTATION", -1000257000: "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS",
	1000297000: "VK_PIPELINE_COMPILE_REQUIRED", -1000012000: "VK_ERROR_INVALID_SHADER_NV",
}

func (r vkResult) String() string {
	if n, ok := resultNames[r]; ok {
		return n
	}
	return fmt.Sprintf("VkResult(%d)", int32(r))
}

// check turns a failed VkResult into an error naming the call.
func check(what string, r vkResult) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("vulkan: %s: %v", what, r)
}

// call invokes a Vulkan function pointer.
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) vkResult {
	r, _, _ := purego.SyscallN(fn, args...)
	return vkResult(int32(r))
}

// Structure types, flags and enums (vulkan_core.h).
const (
	stApplicationInfo          = 0
	stInstanceCreateInfo       = 1
	stDeviceQueueCreateInfo    = 2
	stDeviceCreateInfo         = 3
	stSubmitInfo               = 4
	stMemoryAllocateInfo       = 5
	stFenceCreateInfo          = 8
	stBufferCreateInfo         = 12
	stShaderModuleCreateInfo   = 16
	stPipelineShaderStageInfo  = 18
	stComputePipelineInfo      = 29
	stPipelineLayoutInfo       = 30
	stDescriptorSetLayoutInfo  = 32
	stDescriptorPoolInfo       = 33
	stDescriptorSetAllocInfo   = 34
	stWriteDescriptorSet       = 35
	stCommandPoolCreateInfo    = 39
	stCommandBufferAllocInfo   = 40
	stCommandBufferBeginInfo   = 42
	stMemoryBarrier            = 46
	instanceEnumeratePortable  = 0x1
	memDeviceLocal             = 0x1
	memHostVisible             = 0x2
	memHostCoherent            = 0x4
	memHostCached              = 0x8
	queueCompute               = 0x2
	bufferTransferSrc          = 0x1
	bufferTransferDst          = 0x2
	bufferStorage              = 0x20
	descriptorStorageBuffer    = 7
	shaderStageCompute         = 0x20
	bindPointCompute           = 1
	accessShaderRead           = 0x20
	accessShaderWrite          = 0x40
	accessTransferRead         = 0x800
	accessTransferWrite        = 0x1000
	accessHostRead             = 0x2000
	accessHostWrite            = 0x4000
	stageComputeShader         = 0x800
	stageTransfer              = 0x1000
	stageHost                  = 0x4000
	commandPoolResetBuffer     = 0x2
	commandBufferLevelPrimary  = 0
	wholeSize                  = ^uint64(0)
	apiVersion11               = 1<<22 | 1<<12
	floatOne                   = 0x3f800000 // 1.0f, the queue priority
	portabilityEnumerationName = "VK_KHR_portability_enumeration"
	portabilitySubsetName      = "VK_KHR_portability_subset"
)

// Physical device types (VkPhysicalDeviceType).
const (
	typeOther         = 0
	typeIntegratedGPU = 1
	typeDiscreteGPU   = 2
	typeVirtualGPU    = 3
	typeCPU           = 4
)

type applicationInfo struct {
	sType              uint32
	pNext              unsafe.Pointer
	pApplicationName   unsafe.Pointer
	applicationVersion uint32
	pEngineName        unsafe.Pointer
	engineVersion      uint32
	apiVersion         uint32
}

type instanceCreateInfo struct {
	sType                   uint32
	pNext                   unsafe.Pointer
	flags                   uint32
	pApplicationInfo        unsafe.Pointer
	enabledLayerCount       uint32
	ppEnabledLayerNames     unsafe.Pointer
	enabledExtensionCount   uint32
	ppEnabledExtensionNames unsafe.Pointer
}

type extensionProperties struct {
	extensionName [256]byte
	specVersion   uint32
}

// physicalDeviceLimits is VkPhysicalDeviceLimits; float fields hold their
// bit patterns.
type physicalDeviceLimits struct {
	maxImageDimension1D, maxImageDimension2D, maxImageDimension3D, maxImageDimensionCube      uint32
	maxImageArrayLayers, maxTexelBufferElements, maxUniformBufferRange, maxStorageBufferRange uint32
	maxPushConstantsSize, maxMemoryAllocationCount, maxSamplerAllocationCount                 uint32
	bufferImageGranularity, sparseAddressSpaceSize                                            uint64
	maxBoundDescriptorSets                                                                    uint32
	perStage                                                                                  [6]uint32
	maxPerStageResources                                                                      uint32
	descriptorSet                                                                             [8]uint32
	vertexTessGeomFrag                                                                        [22]uint32
	maxComputeSharedMemorySize                                                                uint32
	maxComputeWorkGroupCount                                                                  [3]uint32
	maxComputeWorkGroupInvocations                                                            uint32
	maxComputeWorkGroupSize                                                                   [3]uint32
	precisionAndDraw                                                                          [5]uint32
	samplerLod, samplerAnisotropy                                                             uint32
	maxViewports                                                                              uint32
	maxViewportDimensions                                                                     [2]uint32
	viewportBoundsRange                                                                       [2]uint32
	viewportSubPixelBits                                                                      uint32
	minMemoryMapAlignment                                                                     uint64
	minTexelBufferOffsetAlignment, minUniformBufferOffsetAlignment                            uint64
	minStorageBufferOffsetAlignment                                                           uint64
	texelOffsets                                                                              [4]uint32
	interpolation                                                                             [3]uint32
	framebuffer                                                                               [8]uint32
	sampleCounts                                                                              [6]uint32
	timestampComputeAndGraphics, timestampPeriod                                              uint32
	clipCull                                                                                  [4]uint32
	pointLine                                                                                 [6]uint32
	strictLines, standardSampleLocations                                                      uint32
	optimalBufferCopyOffsetAlignment, optimalBufferCopyRowPitchAlignment, nonCoherentAtomSize uint64
}

type physicalDeviceProperties struct {
	apiVersion, driverVersion, vendorID, deviceID, deviceType uint32
	deviceName                                                [256]byte
	pipelineCacheUUID                                         [16]byte
	limits                                                    physicalDeviceLimits
	sparseProperties                                          [5]uint32
}

// physicalDeviceFeatures is VkPhysicalDeviceFeatures: 55 VkBool32.
type physicalDeviceFeatures [55]uint32

const featureShaderInt64 = 40 // index of shaderInt64

type queueFamilyProperties struct {
	queueFlags, queueCount, timestampValidBits uint32
	minImageTransferGranularity                [3]uint32
}

type memoryType struct{ propertyFlags, heapIndex uint32 }

type memoryHeap struct {
	size  uint64
	flags uint32
}

type physicalDeviceMemoryProperties struct {
	memoryTypeCount uint32
	memoryTypes     [32]memoryType
	memoryHeapCount uint32
	memoryHeaps     [16]memoryHeap
}

type deviceQueueCreateInfo struct {
	sType            uint32
	pNext            unsafe.Pointer
	flags            uint32
	queueFamilyIndex uint32
	queueCount       uint32
	pQueuePriorities unsafe.Pointer
}

// integerDotFeatures is VkPhysicalDeviceShaderIntegerDotProductFeatures,
// chained to deviceCreateInfo to enable shaderIntegerDotProduct.
type integerDotFeatures struct {
	sType                   uint32
	pNext                   unsafe.Pointer
	shaderIntegerDotProduct uint32
}

// integerDotProperties is VkPhysicalDeviceShaderIntegerDotProductProperties,
// chained to physicalDeviceProperties2: 30 VkBool32 "accelerated" flags,
// [3], [4] and [5] those of the packed 4×8-bit unsigned, signed and
// mixed-signedness dot products.
type integerDotProperties struct {
	sType       uint32
	pNext       unsafe.Pointer
	accelerated [30]uint32
}

// physicalDeviceProperties2 is VkPhysicalDeviceProperties2.
type physicalDeviceProperties2 struct {
	sType      uint32
	pNext      unsafe.Pointer
	properties physicalDeviceProperties
}

const (
	stIntegerDotFeatures        = 1000280000
	stIntegerDotProperties      = 1000280001
	stPhysicalDeviceProperties2 = 1000059001
	integerDotName              = "VK_KHR_shader_integer_dot_product"
)

type deviceCreateInfo struct {
	sType                   uint32
	pNext                   unsafe.Pointer
	flags                   uint32
	queueCreateInfoCount    uint32
	pQueueCreateInfos       unsafe.Pointer
	enabledLayerCount       uint32
	ppEnabledLayerNames     unsafe.Pointer
	enabledExtensionCount   uint32
	ppEnabledExtensionNames unsafe.Pointer
	pEnabledFeatures        unsafe.Pointer
}

type bufferCreateInfo struct {
	sType                 uint32
	pNext                 unsafe.Pointer
	flags                 uint32
	size                  uint64
	usage                 uint32
	sharingMode           uint32
	queueFamilyIndexCount uint32
	pQueueFamilyIndices   unsafe.Pointer
}

type memoryRequirements struct {
	size, alignment uint64
	memoryTypeBits  uint32
}

type memoryAllocateInfo struct {
	sType           uint32
	pNext           unsafe.Pointer
	allocationSize  uint64
	memoryTypeIndex uint32
}

type shaderModuleCreateInfo struct {
	sType    uint32
	pNext    unsafe.Pointer
	flags    uint32
	codeSize uintptr
	pCode    unsafe.Pointer
}

type descriptorSetLayoutBinding struct {
	binding, descriptorType, descriptorCount, stageFlags uint32
	pImmutableSamplers                                   unsafe.Pointer
}

type descriptorSetLayoutCreateInfo struct {
	sType        uint32
	pNext        unsafe.Pointer
	flags        uint32
	bindingCount uint32
	pBindings    unsafe.Pointer
}

type pushConstantRange struct{ stageFlags, offset, size uint32 }

type pipelineLayoutCreateInfo struct {
	sType                  uint32
	pNext                  unsafe.Pointer
	flags                  uint32
	setLayoutCount         uint32
	pSetLayouts            unsafe.Pointer
	pushConstantRangeCount uint32
	pPushConstantRanges    unsafe.Pointer
}

type pipelineShaderStageCreateInfo struct {
	sType               uint32
	pNext               unsafe.Pointer
	flags               uint32
	stage               uint32
	module              uintptr
	pName               unsafe.Pointer
	pSpecializationInfo unsafe.Pointer
}

type computePipelineCreateInfo struct {
	sType              uint32
	pNext              unsafe.Pointer
	flags              uint32
	stage              pipelineShaderStageCreateInfo
	layout             uintptr
	basePipelineHandle uintptr
	basePipelineIndex  int32
}

type descriptorPoolSize struct{ typ, descriptorCount uint32 }

type descriptorPoolCreateInfo struct {
	sType         uint32
	pNext         unsafe.Pointer
	flags         uint32
	maxSets       uint32
	poolSizeCount uint32
	pPoolSizes    unsafe.Pointer
}

type descriptorSetAllocateInfo struct {
	sType              uint32
	pNext              unsafe.Pointer
	descriptorPool     uintptr
	descriptorSetCount uint32
	pSetLayouts        unsafe.Pointer
}

type descriptorBufferInfo struct {
	buffer      uintptr
	offset, rng uint64
}

type writeDescriptorSet struct {
	sType            uint32
	pNext            unsafe.Pointer
	dstSet           uintptr
	dstBinding       uint32
	dstArrayElement  uint32
	descriptorCount  uint32
	descriptorType   uint32
	pImageInfo       unsafe.Pointer
	pBufferInfo      unsafe.Pointer
	pTexelBufferView unsafe.Pointer
}

type commandPoolCreateInfo struct {
	sType            uint32
	pNext            unsafe.Pointer
	flags            uint32
	queueFamilyIndex uint32
}

type commandBufferAllocateInfo struct {
	sType              uint32
	pNext              unsafe.Pointer
	commandPool        uintptr
	level              uint32
	commandBufferCount uint32
}

type commandBufferBeginInfo struct {
	sType            uint32
	pNext            unsafe.Pointer
	flags            uint32
	pInheritanceInfo unsafe.Pointer
}

type memoryBarrier struct {
	sType         uint32
	pNext         unsafe.Pointer
	srcAccessMask uint32
	dstAccessMask uint32
}

type bufferCopy struct{ srcOffset, dstOffset, size uint64 }

type submitInfo struct {
	sType                uint32
	pNext                unsafe.Pointer
	waitSemaphoreCount   uint32
	pWaitSemaphores      unsafe.Pointer
	pWaitDstStageMask    unsafe.Pointer
	commandBufferCount   uint32
	pCommandBuffers      unsafe.Pointer
	signalSemaphoreCount uint32
	pSignalSemaphores    unsafe.Pointer
}

type fenceCreateInfo struct {
	sType uint32
	pNext unsafe.Pointer
	flags uint32
}

// cstr returns s as a NUL-terminated C string.
func cstr(s string) unsafe.Pointer {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return unsafe.Pointer(&b[0])
}

// cstrings returns a C array of C strings, or nil for none.
func cstrings(ss []string) unsafe.Pointer {
	if len(ss) == 0 {
		return nil
	}
	arr := make([]unsafe.Pointer, len(ss))
	for i, s := range ss {
		arr[i] = cstr(s)
	}
	return unsafe.Pointer(&arr[0])
}

// goString reads a NUL-terminated fixed-size C char array.
func goString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// instanceFns are the instance-level entry points, resolved through
// vkGetInstanceProcAddr.
type instanceFns struct {
	destroyInstance, enumeratePhysicalDevices, getPhysicalDeviceProperties, getPhysicalDeviceFeatures,
	getPhysicalDeviceQueueFamilyProperties, getPhysicalDeviceMemoryProperties, createDevice, getDeviceProcAddr,
	enumerateDeviceExtensionProperties uintptr
}

// deviceFns are the device-level entry points, resolved through
// vkGetDeviceProcAddr.
type deviceFns struct {
	destroyDevice, getDeviceQueue, createBuffer, destroyBuffer, getBufferMemoryRequirements, allocateMemory,
	freeMemory, bindBufferMemory, mapMemory, unmapMemory, createShaderModule, destroyShaderModule,
	createDescriptorSetLayout, destroyDescriptorSetLayout, createPipelineLayout, destroyPipelineLayout,
	createComputePipelines, destroyPipeline, createDescriptorPool, destroyDescriptorPool, allocateDescriptorSets,
	updateDescriptorSets, createCommandPool, destroyCommandPool, allocateCommandBuffers, beginCommandBuffer,
	endCommandBuffer, cmdBindPipeline, cmdBindDescriptorSets, cmdPushConstants, cmdDispatch, cmdPipelineBarrier,
	cmdCopyBuffer, cmdFillBuffer, freeCommandBuffers, queueSubmit, queueWaitIdle, createFence, destroyFence, waitForFences, resetFences,
	deviceWaitIdle uintptr
}

// resolve fills the named function pointers with lookup(name), failing
// on the first one the driver does not provide.
func resolve(lookup func(string) uintptr, fns map[string]*uintptr) error {
	for name, p := range fns {
		*p = lookup(name)
		if *p == 0 {
			return fmt.Errorf("%w: the Vulkan driver has no %s", ErrNoDevice, name)
		}
	}
	return nil
}

func (f *instanceFns) table() map[string]*uintptr {
	return map[string]*uintptr{
		"vkDestroyInstance": &f.destroyInstance, "vkEnumeratePhysicalDevices": &f.enumeratePhysicalDevices,
		"vkGetPhysicalDeviceProperties": &f.getPhysicalDeviceProperties, "vkGetPhysicalDeviceFeatures": &f.getPhysicalDeviceFeatures,
		"vkGetPhysicalDeviceQueueFamilyProperties": &f.getPhysicalDeviceQueueFamilyProperties,
		"vkGetPhysicalDeviceMemoryProperties":      &f.getPhysicalDeviceMemoryProperties,
		"vkCreateDevice":                           &f.createDevice, "vkGetDeviceProcAddr": &f.getDeviceProcAddr,
		"vkEnumerateDeviceExtensionProperties": &f.enumerateDeviceExtensionProperties,
	}
}

func (f *deviceFns) table() map[string]*uintptr {
	return map[string]*uintptr{
		"vkDestroyDevice": &f.destroyDevice, "vkGetDeviceQueue": &f.getDeviceQueue, "vkCreateBuffer": &f.createBuffer,
		"vkDestroyBuffer": &f.destroyBuffer, "vkGetBufferMemoryRequirements": &f.getBufferMemoryRequirements,
		"vkAllocateMemory": &f.allocateMemory, "vkFreeMemory": &f.freeMemory, "vkBindBufferMemory": &f.bindBufferMemory,
		"vkMapMemory": &f.mapMemory, "vkUnmapMemory": &f.unmapMemory, "vkCreateShaderModule": &f.createShaderModule,
		"vkDestroyShaderModule": &f.destroyShaderModule, "vkCreateDescriptorSetLayout": &f.createDescriptorSetLayout,
		"vkDestroyDescriptorSetLayout": &f.destroyDescriptorSetLayout, "vkCreatePipelineLayout": &f.createPipelineLayout,
		"vkDestroyPipelineLayout": &f.destroyPipelineLayout, "vkCreateComputePipelines": &f.createComputePipelines,
		"vkDestroyPipeline": &f.destroyPipeline, "vkCreateDescriptorPool": &f.createDescriptorPool,
		"vkDestroyDescriptorPool": &f.destroyDescriptorPool, "vkAllocateDescriptorSets": &f.allocateDescriptorSets,
		"vkUpdateDescriptorSets": &f.updateDescriptorSets, "vkCreateCommandPool": &f.createCommandPool,
		"vkDestroyCommandPool": &f.destroyCommandPool, "vkAllocateCommandBuffers": &f.allocateCommandBuffers,
		"vkBeginCommandBuffer": &f.beginCommandBuffer, "vkEndCommandBuffer": &f.endCommandBuffer,
		"vkCmdBindPipeline": &f.cmdBindPipeline, "vkCmdBindDescriptorSets": &f.cmdBindDescriptorSets,
		"vkCmdPushConstants": &f.cmdPushConstants, "vkCmdDispatch": &f.cmdDispatch,
		"vkCmdPipelineBarrier": &f.cmdPipelineBarrier, "vkCmdCopyBuffer": &f.cmdCopyBuffer,
		"vkCmdFillBuffer": &f.cmdFillBuffer, "vkFreeCommandBuffers": &f.freeCommandBuffers, "vkQueueSubmit": &f.queueSubmit, "vkQueueWaitIdle": &f.queueWaitIdle,
		"vkCreateFence": &f.createFence, "vkDestroyFence": &f.destroyFence, "vkWaitForFences": &f.waitForFences,
		"vkResetFences": &f.resetFences, "vkDeviceWaitIdle": &f.deviceWaitIdle,
	}
}
