// Package vulkan trains MLP jobs (SPEC.md §8) on a GPU through Vulkan
// compute, with the same integer semantics, hence the same state bits after
// every step, as the reference (spec/ref) and the CPU engine (spec/engine).
//
// The Vulkan loader (libvulkan.so.1, vulkan-1.dll, libvulkan.1.dylib or
// MoltenVK) is opened at run time through purego, so the binary needs no
// cgo and still cross-compiles; without a loader or a usable device Open
// returns an error wrapping ErrNoDevice. Shaders are GLSL compute shaders
// in shaders/, compiled to SPIR-V by `go generate` (glslc) and embedded.
// The backend is built for linux, windows and darwin on amd64 and arm64;
// elsewhere, or with the build tag novulkan (which also keeps a
// CGO_ENABLED=0 Linux binary statically linked: purego makes it import
// libc's dynamic loader), Open returns ErrNoDevice.
//
// # Bit-exactness
//
// Every value is an integer. Matrix products multiply int16-range operands
// (held in int32) and sum them in int32: spec.Validate proves every such
// sum, and so every partial sum, fits (SPEC.md §10), so neither the tiling
// nor a split of the summation across workgroups (combined with integer
// atomicAdd) can change a bit. Rounding shifts, saturation, the loss
// (exp2/log2 polynomials) and the optimizer use int64 exactly where the
// reference does; a device without shaderInt64 is refused. Reductions are
// integer sums (order-free) and maxima (atomicMax), so they are
// deterministic. Tests compare per-step state digests with spec/engine on
// every conformance vector and on random specs.
//
// # Execution
//
// A step is one pre-recorded command buffer, submitted once: the batch
// (or, with the training set resident on the device, WithData and
// StepIndices, only the sampler's indices), its labels and the step's
// learning rate are written to host-visible buffers and copied to the
// device, the forward pass, loss, backward pass and update run there, and
// only the per-sample losses come back. The state stays on the device;
// State copies it back when asked, and a Step first uploads any change a
// caller made to it. A failed submission or copy is sticky: the trainer
// refuses further steps rather than let anyone commit to a state the
// device may not hold.
//
// # Devices
//
// Open takes the best usable device (discrete GPU, integrated, virtual,
// CPU); GPUOnly refuses CPU devices such as Mesa's lavapipe, the device
// tests and CI run on. A device needs shaderInt64, a compute queue, 16 KiB
// of shared memory, 256-invocation workgroups and 6 storage buffers per
// shader; DeviceInfo.Unusable says what one lacks. The integer dot-product
// and cooperative-matrix extensions are reported but not used yet: every
// product runs on plain int32 multiply-adds.
package vulkan
