//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"fmt"
	"unsafe"
)

// buffer is a VkBuffer bound to part of an arena's memory.
type buffer struct {
	name   string
	handle uintptr
	size   uint64
	offset uint64         // in the arena's memory
	mapped unsafe.Pointer // host arenas: where the buffer is mapped
}

// int32s views a host buffer as int32 values.
func (b *buffer) int32s() []int32 { return unsafe.Slice((*int32)(b.mapped), b.size/4) }

// int64s views a host buffer as int64 values.
func (b *buffer) int64s() []int64 { return unsafe.Slice((*int64)(b.mapped), b.size/8) }

// bytes views a host buffer as bytes.
func (b *buffer) bytes() []byte { return unsafe.Slice((*byte)(b.mapped), b.size) }

// arena creates buffers and backs them with one memory allocation.
type arena struct {
	d      *Device
	host   bool
	bufs   []*buffer
	memory uintptr
	reqs   []memoryRequirements
}

// add creates a buffer of size bytes (at least 16) in the arena.
func (a *arena) add(name string, size uint64) (*buffer, error) {
	size = max(16, (size+15)&^15)
	if !a.host && size > a.d.info.MaxStorageBufferRange {
		return nil, fmt.Errorf("%w: buffer %s needs %d bytes, the device binds at most %d", ErrUnsupported, name, size, a.d.info.MaxStorageBufferRange)
	}
	ci := &bufferCreateInfo{sType: stBufferCreateInfo, size: size, usage: bufferStorage | bufferTransferSrc | bufferTransferDst}
	b := &buffer{name: name, size: size}
	if err := check("vkCreateBuffer "+name, call(a.d.fn.createBuffer, a.d.handle, uintptr(unsafe.Pointer(ci)), 0, uintptr(unsafe.Pointer(&b.handle)))); err != nil {
		return nil, err
	}
	a.bufs = append(a.bufs, b)
	var req memoryRequirements
	call(a.d.fn.getBufferMemoryRequirements, a.d.handle, b.handle, uintptr(unsafe.Pointer(&req)))
	a.reqs = append(a.reqs, req)
	return b, nil
}

// commit allocates the arena's memory, binds every buffer and, for a host
// arena, maps it.
func (a *arena) commit() error {
	var total uint64
	bits := ^uint32(0)
	for i, b := range a.bufs {
		r := a.reqs[i]
		align := max(r.alignment, a.d.info.StorageAlignment, 16)
		total = (total + align - 1) / align * align
		b.offset = total
		total += r.size
		bits &= r.memoryTypeBits
	}
	var mt int
	if a.host {
		mt = a.d.memoryType(bits, memHostVisible|memHostCoherent, memHostCached)
	} else {
		mt = a.d.memoryType(bits, memDeviceLocal, 0)
		if mt < 0 {
			mt = a.d.memoryType(bits, 0, 0)
		}
	}
	if mt < 0 {
		return fmt.Errorf("%w for %d bytes (host-visible %v)", errNoMemoryType, total, a.host)
	}
	ai := &memoryAllocateInfo{sType: stMemoryAllocateInfo, allocationSize: max(total, 16), memoryTypeIndex: uint32(mt)}
	if err := check(fmt.Sprintf("vkAllocateMemory (%d MiB)", total>>20), call(a.d.fn.allocateMemory, a.d.handle, uintptr(unsafe.Pointer(ai)), 0, uintptr(unsafe.Pointer(&a.memory)))); err != nil {
		return err
	}
	for _, b := range a.bufs {
		if err := check("vkBindBufferMemory "+b.name, call(a.d.fn.bindBufferMemory, a.d.handle, b.handle, a.memory, uintptr(b.offset))); err != nil {
			return err
		}
	}
	if !a.host {
		return nil
	}
	var base unsafe.Pointer
	if err := check("vkMapMemory", call(a.d.fn.mapMemory, a.d.handle, a.memory, 0, uintptr(wholeSize), 0, uintptr(unsafe.Pointer(&base)))); err != nil {
		return err
	}
	for _, b := range a.bufs {
		b.mapped = unsafe.Add(base, b.offset)
		clear(b.bytes())
	}
	return nil
}

func (a *arena) destroy() {
	for _, b := range a.bufs {
		call(a.d.fn.destroyBuffer, a.d.handle, b.handle, 0)
	}
	a.bufs = nil
	if a.memory != 0 {
		call(a.d.fn.freeMemory, a.d.handle, a.memory, 0) // unmaps too
		a.memory = 0
	}
}

// pipeline is a compute pipeline with its layouts.
type pipeline struct {
	name      string
	module    uintptr
	setLayout uintptr
	layout    uintptr
	handle    uintptr
	bindings  int
	pushSize  uint32
}

// newPipeline builds a compute pipeline from SPIR-V whose bindings 0..n-1
// of set 0 are storage buffers and whose push constants are pushSize bytes.
func (d *Device) newPipeline(name string, spirv []byte, bindings int, pushSize uint32) (*pipeline, error) {
	if len(spirv) == 0 || len(spirv)%4 != 0 {
		return nil, fmt.Errorf("vulkan: shader %s: %d bytes of SPIR-V", name, len(spirv))
	}
	p := &pipeline{name: name, bindings: bindings, pushSize: pushSize}
	code := make([]uint32, len(spirv)/4) // aligned copy
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&code[0])), len(spirv)), spirv)
	smci := &shaderModuleCreateInfo{sType: stShaderModuleCreateInfo, codeSize: uintptr(len(spirv)), pCode: unsafe.Pointer(&code[0])}
	if err := check("vkCreateShaderModule "+name, call(d.fn.createShaderModule, d.handle, uintptr(unsafe.Pointer(smci)), 0, uintptr(unsafe.Pointer(&p.module)))); err != nil {
		return p, err
	}
	bs := make([]descriptorSetLayoutBinding, bindings)
	for i := range bs {
		bs[i] = descriptorSetLayoutBinding{binding: uint32(i), descriptorType: descriptorStorageBuffer, descriptorCount: 1, stageFlags: shaderStageCompute}
	}
	dslci := &descriptorSetLayoutCreateInfo{sType: stDescriptorSetLayoutInfo, bindingCount: uint32(bindings), pBindings: unsafe.Pointer(&bs[0])}
	if err := check("vkCreateDescriptorSetLayout "+name, call(d.fn.createDescriptorSetLayout, d.handle, uintptr(unsafe.Pointer(dslci)), 0, uintptr(unsafe.Pointer(&p.setLayout)))); err != nil {
		return p, err
	}
	layouts := new(uintptr)
	*layouts = p.setLayout
	pcr := &pushConstantRange{stageFlags: shaderStageCompute, size: pushSize}
	plci := &pipelineLayoutCreateInfo{sType: stPipelineLayoutInfo, setLayoutCount: 1, pSetLayouts: unsafe.Pointer(layouts)}
	if pushSize > 0 {
		plci.pushConstantRangeCount, plci.pPushConstantRanges = 1, unsafe.Pointer(pcr)
	}
	if err := check("vkCreatePipelineLayout "+name, call(d.fn.createPipelineLayout, d.handle, uintptr(unsafe.Pointer(plci)), 0, uintptr(unsafe.Pointer(&p.layout)))); err != nil {
		return p, err
	}
	cpci := &computePipelineCreateInfo{sType: stComputePipelineInfo, layout: p.layout, basePipelineIndex: -1,
		stage: pipelineShaderStageCreateInfo{sType: stPipelineShaderStageInfo, stage: shaderStageCompute, module: p.module, pName: cstr("main")}}
	if err := check("vkCreateComputePipelines "+name, call(d.fn.createComputePipelines, d.handle, 0, 1, uintptr(unsafe.Pointer(cpci)), 0, uintptr(unsafe.Pointer(&p.handle)))); err != nil {
		return p, err
	}
	return p, nil
}

func (d *Device) destroyPipeline(p *pipeline) {
	if p.handle != 0 {
		call(d.fn.destroyPipeline, d.handle, p.handle, 0)
	}
	if p.layout != 0 {
		call(d.fn.destroyPipelineLayout, d.handle, p.layout, 0)
	}
	if p.setLayout != 0 {
		call(d.fn.destroyDescriptorSetLayout, d.handle, p.setLayout, 0)
	}
	if p.module != 0 {
		call(d.fn.destroyShaderModule, d.handle, p.module, 0)
	}
}

// descriptors allocates descriptor sets from one pool.
type descriptors struct {
	d    *Device
	pool uintptr
}

func (d *Device) newDescriptors(sets, buffers int) (*descriptors, error) {
	size := &descriptorPoolSize{typ: descriptorStorageBuffer, descriptorCount: uint32(buffers)}
	ci := &descriptorPoolCreateInfo{sType: stDescriptorPoolInfo, maxSets: uint32(sets), poolSizeCount: 1, pPoolSizes: unsafe.Pointer(size)}
	ds := &descriptors{d: d}
	return ds, check("vkCreateDescriptorPool", call(d.fn.createDescriptorPool, d.handle, uintptr(unsafe.Pointer(ci)), 0, uintptr(unsafe.Pointer(&ds.pool))))
}

// set allocates a descriptor set for p binding bufs in order.
func (ds *descriptors) set(p *pipeline, bufs ...*buffer) (uintptr, error) {
	if len(bufs) != p.bindings {
		return 0, fmt.Errorf("vulkan: pipeline %s takes %d buffers, got %d", p.name, p.bindings, len(bufs)) // a bug in the caller
	}
	layouts := new(uintptr)
	*layouts = p.setLayout
	ai := &descriptorSetAllocateInfo{sType: stDescriptorSetAllocInfo, descriptorPool: ds.pool, descriptorSetCount: 1, pSetLayouts: unsafe.Pointer(layouts)}
	var set uintptr
	if err := check("vkAllocateDescriptorSets "+p.name, call(ds.d.fn.allocateDescriptorSets, ds.d.handle, uintptr(unsafe.Pointer(ai)), uintptr(unsafe.Pointer(&set)))); err != nil {
		return 0, err
	}
	infos := make([]descriptorBufferInfo, len(bufs))
	writes := make([]writeDescriptorSet, len(bufs))
	for i, b := range bufs {
		infos[i] = descriptorBufferInfo{buffer: b.handle, rng: wholeSize}
		writes[i] = writeDescriptorSet{sType: stWriteDescriptorSet, dstSet: set, dstBinding: uint32(i), descriptorCount: 1,
			descriptorType: descriptorStorageBuffer, pBufferInfo: unsafe.Pointer(&infos[i])}
	}
	call(ds.d.fn.updateDescriptorSets, ds.d.handle, uintptr(len(writes)), uintptr(unsafe.Pointer(&writes[0])), 0, 0)
	return set, nil
}

func (ds *descriptors) destroy() {
	if ds != nil && ds.pool != 0 {
		call(ds.d.fn.destroyDescriptorPool, ds.d.handle, ds.pool, 0)
		ds.pool = 0
	}
}

// recorder records one command buffer.
type recorder struct {
	d  *Device
	cb uintptr
}

// newCommandPool creates a command pool on the compute queue's family.
// Each trainer has its own: a pool, and every command buffer allocated
// from it, may be used by one goroutine at a time.
func (d *Device) newCommandPool() (uintptr, error) {
	var pool uintptr
	pci := &commandPoolCreateInfo{sType: stCommandPoolCreateInfo, flags: commandPoolResetBuffer, queueFamilyIndex: d.family}
	return pool, check("vkCreateCommandPool", call(d.fn.createCommandPool, d.handle, uintptr(unsafe.Pointer(pci)), 0, uintptr(unsafe.Pointer(&pool))))
}

// newCommandBuffer allocates a command buffer from pool and starts
// recording it.
func (d *Device) newCommandBuffer(pool uintptr) (*recorder, error) {
	ai := &commandBufferAllocateInfo{sType: stCommandBufferAllocInfo, commandPool: pool, level: commandBufferLevelPrimary, commandBufferCount: 1}
	r := &recorder{d: d}
	if err := check("vkAllocateCommandBuffers", call(d.fn.allocateCommandBuffers, d.handle, uintptr(unsafe.Pointer(ai)), uintptr(unsafe.Pointer(&r.cb)))); err != nil {
		return nil, err
	}
	bi := &commandBufferBeginInfo{sType: stCommandBufferBeginInfo}
	if err := check("vkBeginCommandBuffer", call(d.fn.beginCommandBuffer, r.cb, uintptr(unsafe.Pointer(bi)))); err != nil {
		return r, err // r.cb is freed with its pool
	}
	// The writes of earlier submissions (a step, an upload) are visible
	// to this one: a barrier's first scope covers every command earlier
	// in submission order on the queue.
	r.barrier()
	return r, nil
}

func (r *recorder) end() error {
	return check("vkEndCommandBuffer", call(r.d.fn.endCommandBuffer, r.cb))
}

// dispatch binds p and set, pushes push and dispatches groups.
func (r *recorder) dispatch(p *pipeline, set uintptr, push []int32, x, y, z uint32) {
	call(r.d.fn.cmdBindPipeline, r.cb, bindPointCompute, p.handle)
	sets := new(uintptr)
	*sets = set
	call(r.d.fn.cmdBindDescriptorSets, r.cb, bindPointCompute, p.layout, 0, 1, uintptr(unsafe.Pointer(sets)), 0, 0)
	if len(push) > 0 {
		pc := make([]int32, p.pushSize/4)
		copy(pc, push)
		call(r.d.fn.cmdPushConstants, r.cb, p.layout, shaderStageCompute, 0, uintptr(p.pushSize), uintptr(unsafe.Pointer(&pc[0])))
	}
	call(r.d.fn.cmdDispatch, r.cb, uintptr(x), uintptr(y), uintptr(z))
}

// barrier makes every earlier shader or transfer write visible to later
// shaders and transfers.
func (r *recorder) barrier() {
	mb := &memoryBarrier{sType: stMemoryBarrier, srcAccessMask: accessShaderWrite | accessTransferWrite,
		dstAccessMask: accessShaderRead | accessShaderWrite | accessTransferRead | accessTransferWrite}
	call(r.d.fn.cmdPipelineBarrier, r.cb, stageComputeShader|stageTransfer, stageComputeShader|stageTransfer, 0, 1, uintptr(unsafe.Pointer(mb)), 0, 0, 0, 0)
}

// hostBarrier makes earlier writes visible to the host after the fence.
func (r *recorder) hostBarrier() {
	mb := &memoryBarrier{sType: stMemoryBarrier, srcAccessMask: accessShaderWrite | accessTransferWrite, dstAccessMask: accessHostRead}
	call(r.d.fn.cmdPipelineBarrier, r.cb, stageComputeShader|stageTransfer, stageHost, 0, 1, uintptr(unsafe.Pointer(mb)), 0, 0, 0, 0)
}

// fill sets every 32-bit word of b to v.
func (r *recorder) fill(b *buffer, v uint32) {
	call(r.d.fn.cmdFillBuffer, r.cb, b.handle, 0, uintptr(wholeSize), uintptr(v))
}

// copy copies size bytes from src at srcOff to dst at dstOff.
func (r *recorder) copy(src, dst *buffer, srcOff, dstOff, size uint64) {
	region := &bufferCopy{srcOffset: srcOff, dstOffset: dstOff, size: size}
	call(r.d.fn.cmdCopyBuffer, r.cb, src.handle, dst.handle, 1, uintptr(unsafe.Pointer(region)))
}
