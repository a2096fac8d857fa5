//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// instance is a VkInstance with its entry points.
type instance struct {
	handle     uintptr
	gipa       uintptr
	fn         instanceFns
	portable   bool // created with the portability enumeration flag
	physicals  []uintptr
	infos      []DeviceInfo
	extensions [][]string // per physical device
}

func (in *instance) lookup(name string) uintptr {
	r, _, _ := puregoCall(in.gipa, in.handle, uintptr(cstr(name)))
	return r
}

// puregoCall is call for functions that return a pointer.
//
//go:uintptrescapes
func puregoCall(fn uintptr, args ...uintptr) (uintptr, uintptr, uintptr) {
	return purego.SyscallN(fn, args...)
}

// newInstance loads the loader, creates an instance (with the portability
// enumeration extension when the loader has it: MoltenVK) and describes
// every physical device.
func newInstance() (*instance, error) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return nil, fmt.Errorf("%w: the Vulkan backend needs a 64-bit platform", ErrNoDevice)
	}
	_, gipa, err := openLoader()
	if err != nil {
		return nil, err
	}
	in := &instance{gipa: gipa}
	enumExt := in.lookup("vkEnumerateInstanceExtensionProperties")
	create := in.lookup("vkCreateInstance")
	if enumExt == 0 || create == 0 {
		return nil, fmt.Errorf("%w: the Vulkan loader has no vkCreateInstance", ErrNoDevice)
	}
	var n uint32
	var exts []string
	if call(enumExt, 0, uintptr(unsafe.Pointer(&n)), 0) == 0 && n > 0 {
		props := make([]extensionProperties, n)
		if call(enumExt, 0, uintptr(unsafe.Pointer(&n)), uintptr(unsafe.Pointer(&props[0]))) == 0 {
			for _, p := range props[:n] {
				exts = append(exts, goString(p.extensionName[:]))
			}
		}
	}
	app := &applicationInfo{sType: stApplicationInfo, pApplicationName: cstr("beluga"), pEngineName: cstr("beluga"), apiVersion: apiVersion11}
	ci := &instanceCreateInfo{sType: stInstanceCreateInfo, pApplicationInfo: unsafe.Pointer(app)}
	var enabled []string
	if slices.Contains(exts, portabilityEnumerationName) {
		enabled = append(enabled, portabilityEnumerationName)
		ci.flags = instanceEnumeratePortable
		in.portable = true
	}
	ci.enabledExtensionCount, ci.ppEnabledExtensionNames = uint32(len(enabled)), cstrings(enabled)
	if r := call(create, uintptr(unsafe.Pointer(ci)), 0, uintptr(unsafe.Pointer(&in.handle))); r != 0 {
		return nil, fmt.Errorf("%w: vkCreateInstance: %v (is a Vulkan driver, an ICD, installed?)", ErrNoDevice, r)
	}
	if err := resolve(in.lookup, in.fn.table()); err != nil {
		call(in.lookup("vkDestroyInstance"), in.handle, 0)
		return nil, err
	}
	if err := in.enumerate(); err != nil {
		in.destroy()
		return nil, err
	}
	return in, nil
}

func (in *instance) destroy() {
	if in.handle != 0 {
		call(in.fn.destroyInstance, in.handle, 0)
		in.handle = 0
	}
}

func (in *instance) enumerate() error {
	var n uint32
	if err := check("vkEnumeratePhysicalDevices", call(in.fn.enumeratePhysicalDevices, in.handle, uintptr(unsafe.Pointer(&n)), 0)); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDevice, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: the Vulkan loader found no device (no driver/ICD installed?)", ErrNoDevice)
	}
	in.physicals = make([]uintptr, n)
	if r := call(in.fn.enumeratePhysicalDevices, in.handle, uintptr(unsafe.Pointer(&n)), uintptr(unsafe.Pointer(&in.physicals[0]))); r != 0 && r != 5 {
		return fmt.Errorf("%w: %v", ErrNoDevice, check("vkEnumeratePhysicalDevices", r))
	}
	in.physicals = in.physicals[:n]
	for i, pd := range in.physicals {
		info, exts := in.describe(i, pd)
		in.infos = append(in.infos, info)
		in.extensions = append(in.extensions, exts)
	}
	return nil
}

// describe queries one physical device.
func (in *instance) describe(index int, pd uintptr) (DeviceInfo, []string) {
	props := new(physicalDeviceProperties)
	call(in.fn.getPhysicalDeviceProperties, pd, uintptr(unsafe.Pointer(props)))
	feats := new(physicalDeviceFeatures)
	call(in.fn.getPhysicalDeviceFeatures, pd, uintptr(unsafe.Pointer(feats)))
	mem := new(physicalDeviceMemoryProperties)
	call(in.fn.getPhysicalDeviceMemoryProperties, pd, uintptr(unsafe.Pointer(mem)))
	v := props.apiVersion
	info := DeviceInfo{
		Index: index, Name: goString(props.deviceName[:]), Type: typeName(props.deviceType),
		GPU:           props.deviceType == typeDiscreteGPU || props.deviceType == typeIntegratedGPU,
		APIVersion:    fmt.Sprintf("%d.%d.%d", v>>22&0x7f, v>>12&0x3ff, v&0xfff),
		DriverVersion: props.driverVersion, VendorID: props.vendorID, DeviceID: props.deviceID,
		ShaderInt64:           feats[featureShaderInt64] != 0,
		MaxStorageBufferRange: uint64(props.limits.maxStorageBufferRange),
		MaxSharedMemory:       props.limits.maxComputeSharedMemorySize,
		MaxWorkGroupCount:     props.limits.maxComputeWorkGroupCount,
		StorageAlignment:      props.limits.minStorageBufferOffsetAlignment,
	}
	for i := range mem.memoryHeapCount {
		if mem.memoryHeaps[i].flags&1 != 0 { // VK_MEMORY_HEAP_DEVICE_LOCAL_BIT
			info.DeviceLocalBytes += mem.memoryHeaps[i].size
		}
	}
	var exts []string
	var n uint32
	if call(in.fn.enumerateDeviceExtensionProperties, pd, 0, uintptr(unsafe.Pointer(&n)), 0) == 0 && n > 0 {
		props := make([]extensionProperties, n)
		if call(in.fn.enumerateDeviceExtensionProperties, pd, 0, uintptr(unsafe.Pointer(&n)), uintptr(unsafe.Pointer(&props[0]))) == 0 {
			for _, p := range props[:n] {
				exts = append(exts, goString(p.extensionName[:]))
			}
		}
	}
	info.Extensions = len(exts)
	info.IntegerDotProduct = slices.Contains(exts, "VK_KHR_shader_integer_dot_product")
	info.CooperativeMatrix = slices.Contains(exts, "VK_KHR_cooperative_matrix")
	if props2 := in.lookup("vkGetPhysicalDeviceProperties2"); info.IntegerDotProduct && props2 != 0 {
		dp := &integerDotProperties{sType: stIntegerDotProperties}
		p2 := &physicalDeviceProperties2{sType: stPhysicalDeviceProperties2, pNext: unsafe.Pointer(dp)}
		call(props2, pd, uintptr(unsafe.Pointer(p2)))
		a := dp.accelerated
		info.IntegerDotAccelerated = a[3] != 0 && a[4] != 0 && a[5] != 0
	}
	switch {
	case !info.ShaderInt64:
		info.Unusable = "no shaderInt64 (the backend needs 64-bit integers in shaders)"
	case in.computeFamily(pd) < 0:
		info.Unusable = "no compute queue"
	case info.MaxWorkGroupCount[0] < 65535 || info.MaxWorkGroupCount[2] < 64:
		info.Unusable = "workgroup count limits below what the shaders dispatch"
	case info.MaxSharedMemory < 16384:
		info.Unusable = "less than 16 KiB of shared memory per workgroup"
	case props.limits.maxComputeWorkGroupInvocations < 256 || props.limits.maxComputeWorkGroupSize[0] < 256:
		info.Unusable = "workgroups of fewer than 256 invocations"
	case props.limits.perStage[2] < 6: // maxPerStageDescriptorStorageBuffers
		info.Unusable = "fewer than 6 storage buffers per shader"
	case props.limits.maxPushConstantsSize < 48:
		info.Unusable = "fewer than 48 bytes of push constants"
	}
	return info, exts
}

func (in *instance) computeFamily(pd uintptr) int {
	var n uint32
	call(in.fn.getPhysicalDeviceQueueFamilyProperties, pd, uintptr(unsafe.Pointer(&n)), 0)
	if n == 0 {
		return -1
	}
	fams := make([]queueFamilyProperties, n)
	call(in.fn.getPhysicalDeviceQueueFamilyProperties, pd, uintptr(unsafe.Pointer(&n)), uintptr(unsafe.Pointer(&fams[0])))
	for i, f := range fams[:n] {
		if f.queueFlags&queueCompute != 0 && f.queueCount > 0 {
			return i
		}
	}
	return -1
}

func typeName(t uint32) string {
	switch t {
	case typeDiscreteGPU:
		return "discrete GPU"
	case typeIntegratedGPU:
		return "integrated GPU"
	case typeVirtualGPU:
		return "virtual GPU"
	case typeCPU:
		return "CPU"
	}
	return "other"
}

// typeRank orders device types for the default choice.
func typeRank(info DeviceInfo) int {
	switch info.Type {
	case "discrete GPU":
		return 0
	case "integrated GPU":
		return 1
	case "virtual GPU":
		return 2
	case "CPU":
		return 3
	}
	return 4
}

// Devices lists the Vulkan devices of this machine, usable or not. It
// returns an error wrapping ErrNoDevice when there is no loader or no
// device at all.
func Devices() ([]DeviceInfo, error) {
	in, err := newInstance()
	if err != nil {
		return nil, err
	}
	defer in.destroy()
	return slices.Clone(in.infos), nil
}

// DeviceOption narrows which device Open picks.
type DeviceOption func(*deviceConfig)

type deviceConfig struct {
	index   int
	gpuOnly bool
	dot     int // 0: BELUGA_VULKAN_DOT decides; 1 on; -1 off
}

// WithIntegerDot forces the products (MLP and GPT) onto the integer
// dot-product path (on: Open fails on a device without
// VK_KHR_shader_integer_dot_product) or onto plain int32 multiply-adds
// (off). Without it the environment variable BELUGA_VULKAN_DOT (1 or 0)
// decides, and unset, the dot path runs where the device reports its
// packed 4×8-bit dot products as accelerated
// (DeviceInfo.IntegerDotAccelerated; not lavapipe, which emulates them
// slower than the int32 multiply-adds). Both paths give the same sums bit
// for bit (shaders/gemm.comp, shaders/dot.glsl), so the digest never
// depends on the choice.
func WithIntegerDot(on bool) DeviceOption {
	return func(c *deviceConfig) {
		c.dot = -1
		if on {
			c.dot = 1
		}
	}
}

// WithDeviceIndex picks the device at index i of Devices().
func WithDeviceIndex(i int) DeviceOption { return func(c *deviceConfig) { c.index = i } }

// GPUOnly refuses devices that are not a discrete or integrated GPU (such
// as Mesa's lavapipe, a CPU device): what automatic backend selection
// wants, since a CPU device is slower than the CPU engine.
func GPUOnly() DeviceOption { return func(c *deviceConfig) { c.gpuOnly = true } }

// Device is an open Vulkan device with one compute queue. Its methods are
// safe for concurrent use; submissions are serialised.
type Device struct {
	mu       sync.Mutex
	in       *instance
	info     DeviceInfo
	physical uintptr
	handle   uintptr
	fn       deviceFns
	queue    uintptr
	family   uint32
	mem      *physicalDeviceMemoryProperties
	fence    uintptr
	pipes    map[string]*pipeline // built once, shared by trainers
	dot      bool                 // shaderIntegerDotProduct enabled: the MLP products may use it
	closed   bool
	lastNano atomic.Int64 // when the last submission finished (Unix ns)
}

// LastSubmit returns when the device last finished work of this process
// (zero before the first): a solver's idle check counts the GPU's
// utilization as its own while it trains.
func (d *Device) LastSubmit() time.Time {
	if n := d.lastNano.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Open opens a usable device: by default the best by type (discrete GPU,
// integrated, virtual, CPU), the lowest index among equals.
func Open(opts ...DeviceOption) (*Device, error) {
	c := deviceConfig{index: -1}
	for _, o := range opts {
		o(&c)
	}
	in, err := newInstance()
	if err != nil {
		return nil, err
	}
	pick := -1
	var why []string
	for i, info := range in.infos {
		switch {
		case c.index >= 0 && i != c.index:
			continue
		case info.Unusable != "":
			why = append(why, fmt.Sprintf("%s: %s", info.Name, info.Unusable))
			continue
		case c.gpuOnly && !info.GPU:
			why = append(why, fmt.Sprintf("%s: a %s, not a GPU", info.Name, info.Type))
			continue
		}
		if pick < 0 || typeRank(info) < typeRank(in.infos[pick]) {
			pick = i
		}
	}
	if c.index >= len(in.infos) {
		why = append(why, fmt.Sprintf("no device %d (%d devices)", c.index, len(in.infos)))
	}
	if pick < 0 {
		in.destroy()
		return nil, fmt.Errorf("%w: %s", ErrNoDevice, strings.Join(why, "; "))
	}
	d := &Device{in: in, info: in.infos[pick], physical: in.physicals[pick]}
	if c.dot == 0 {
		switch os.Getenv("BELUGA_VULKAN_DOT") {
		case "1":
			c.dot = 1
		case "0":
			c.dot = -1
		}
	}
	switch {
	case c.dot == 1 && !d.info.IntegerDotProduct:
		in.destroy()
		return nil, fmt.Errorf("%w: the integer dot-product path was asked for, but %s lacks %s", ErrUnsupported, d.info.Name, integerDotName)
	case c.dot == 1:
		d.dot = true
	case c.dot == 0:
		d.dot = d.info.IntegerDotAccelerated
	}
	if err := d.create(in.extensions[pick]); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Device) create(exts []string) error {
	in := d.in
	d.family = uint32(in.computeFamily(d.physical))
	d.mem = new(physicalDeviceMemoryProperties)
	call(in.fn.getPhysicalDeviceMemoryProperties, d.physical, uintptr(unsafe.Pointer(d.mem)))
	prio := new(uint32)
	*prio = floatOne
	qci := &deviceQueueCreateInfo{sType: stDeviceQueueCreateInfo, queueFamilyIndex: d.family, queueCount: 1, pQueuePriorities: unsafe.Pointer(prio)}
	feats := new(physicalDeviceFeatures)
	feats[featureShaderInt64] = 1
	var enabled []string
	if slices.Contains(exts, portabilitySubsetName) {
		enabled = append(enabled, portabilitySubsetName) // required where present (MoltenVK)
	}
	var next unsafe.Pointer
	if d.dot {
		enabled = append(enabled, integerDotName)
		next = unsafe.Pointer(&integerDotFeatures{sType: stIntegerDotFeatures, shaderIntegerDotProduct: 1})
	}
	dci := &deviceCreateInfo{sType: stDeviceCreateInfo, pNext: next, queueCreateInfoCount: 1, pQueueCreateInfos: unsafe.Pointer(qci),
		enabledExtensionCount: uint32(len(enabled)), ppEnabledExtensionNames: cstrings(enabled), pEnabledFeatures: unsafe.Pointer(feats)}
	if err := check("vkCreateDevice", call(in.fn.createDevice, d.physical, uintptr(unsafe.Pointer(dci)), 0, uintptr(unsafe.Pointer(&d.handle)))); err != nil {
		return err
	}
	lookup := func(name string) uintptr {
		r, _, _ := puregoCall(in.fn.getDeviceProcAddr, d.handle, uintptr(cstr(name)))
		return r
	}
	if err := resolve(lookup, d.fn.table()); err != nil {
		return err
	}
	call(d.fn.getDeviceQueue, d.handle, uintptr(d.family), 0, uintptr(unsafe.Pointer(&d.queue)))
	fci := &fenceCreateInfo{sType: stFenceCreateInfo}
	return check("vkCreateFence", call(d.fn.createFence, d.handle, uintptr(unsafe.Pointer(fci)), 0, uintptr(unsafe.Pointer(&d.fence))))
}

// Info describes the device.
func (d *Device) Info() DeviceInfo { return d.info }

// Close waits for the device to go idle and releases it. Objects created
// on it (trainers) must be closed first.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.handle != 0 {
		call(d.fn.deviceWaitIdle, d.handle)
		for _, p := range d.pipes {
			d.destroyPipeline(p)
		}
		if d.fence != 0 {
			call(d.fn.destroyFence, d.handle, d.fence, 0)
		}
		call(d.fn.destroyDevice, d.handle, 0)
		d.handle = 0
	}
	d.in.destroy()
	return nil
}

// pipeline returns the compute pipeline of the named shader, building it
// on first use (compiling a pipeline is slow on some drivers).
func (d *Device) pipeline(name string) (*pipeline, error) {
	l, ok := shaderLayouts[name]
	if !ok {
		return nil, fmt.Errorf("vulkan: no shader %q: no layout", name) // a bug in the caller
	}
	return d.layoutPipeline(name, l.bindings, l.push)
}

// alive returns ErrClosed once the device is closed.
func (d *Device) alive() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return nil
}

// submit runs command buffer cb on the queue and waits for it.
func (d *Device) submit(cb uintptr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	cbs := new(uintptr)
	*cbs = cb
	si := &submitInfo{sType: stSubmitInfo, commandBufferCount: 1, pCommandBuffers: unsafe.Pointer(cbs)}
	if err := check("vkQueueSubmit", call(d.fn.queueSubmit, d.queue, 1, uintptr(unsafe.Pointer(si)), d.fence)); err != nil {
		return err
	}
	fences := new(uintptr)
	*fences = d.fence
	// Wait without a deadline: a step of the largest valid job on a slow
	// device takes minutes, and a lost device returns VK_ERROR_DEVICE_LOST.
	if err := check("vkWaitForFences", call(d.fn.waitForFences, d.handle, 1, uintptr(unsafe.Pointer(fences)), 1, uintptr(^uint64(0)))); err != nil {
		return err
	}
	runtime.KeepAlive(cbs)
	d.lastNano.Store(time.Now().UnixNano())
	return check("vkResetFences", call(d.fn.resetFences, d.handle, 1, uintptr(unsafe.Pointer(fences))))
}

// memoryType returns the index of a memory type allowed by bits with all
// of want, preferring one that also has prefer; -1 if none.
func (d *Device) memoryType(bits, want, prefer uint32) int {
	best := -1
	for i := range d.mem.memoryTypeCount {
		f := d.mem.memoryTypes[i].propertyFlags
		if bits&(1<<i) == 0 || f&want != want {
			continue
		}
		if f&prefer == prefer {
			return int(i)
		}
		if best < 0 {
			best = int(i)
		}
	}
	return best
}

var errNoMemoryType = errors.New("vulkan: no suitable memory type")
