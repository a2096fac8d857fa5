// Package vulkan trains MLP jobs (SPEC.md §8; Trainer) and GPT jobs
// (SPEC.md §20; GPTTrainer) on a GPU through Vulkan compute, with the same
// integer semantics, hence the same state bits after every step, as the
// references (spec/ref, spec/gptref) and the CPU engines (spec/engine,
// spec/gpt).
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
// A GPT step mirrors spec/gptref's operator graph: one device buffer per
// graph tensor (int64 elements) and one kernel per operator kind
// (gptref.Op.Kind), each computing exactly its operator's formula: the
// products in shared-memory tiles with int64 sums (exact by §20.16's
// bounds), every row and tensor reduction (maxima, sums, the global norm)
// in workgroup shared memory and a second dispatch, never atomics.
// checkGPTKind (the tests) compares every kind, operator by operator,
// with the reference, and whole steps are compared with spec/gpt on random
// configurations and the GPT conformance vectors.
//
// # Execution
//
// A step is one pre-recorded command buffer, submitted once: the batch
// (or, with the training set resident on the device, WithData and
// StepIndices, only the sampler's indices), its labels and the step's
// learning rate are written to host-visible buffers and copied to the
// device, the forward pass, loss, backward pass and update run there, and
// only the per-sample losses come back (for a GPT: the batch's tokens and
// targets go in; every operator of the graph, in order with a barrier
// after each, then the next state copied over the state; the loss and
// gradient norm come back). The state stays on the device;
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
// shader; DeviceInfo.Unusable says what one lacks. The MLP and GPT
// products run on packed 4×8-bit integer dot products
// (VK_KHR_shader_integer_dot_product; each operand split into a signed
// high and an unsigned low byte, exact: shaders/gemm.comp, shaders/dot.glsl)
// where the device reports them accelerated, and on plain int32
// multiply-adds elsewhere; WithIntegerDot or BELUGA_VULKAN_DOT=1/0 forces
// either path, and both give the same bits. The cooperative-matrix
// extension is reported but not used yet.
package vulkan
