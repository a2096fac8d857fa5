//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
)

// The GPT step on the device mirrors spec/gptref's operator graph: one
// device buffer per graph tensor (int64 elements, row-major, the shapes of
// gptref.Graph.Tensors()) and one kernel per operator kind (gptref.Op.Kind),
// recorded op by op with a barrier after each.

// gptDims are a configuration's sizes and the constants of SPEC.md §20.9
// that the operators read (gptref's dims).
type gptDims struct {
	n, d, f, t, batch, heads, dh, bits int
	lim                                int64 // 2^b − 1: the largest quantised operand
	kappa, iota                        int64 // log₂e/√Dh and 1/√Dh in Q16
}

func newGPTDims(c gpt.Config) gptDims {
	dh := c.HeadDim()
	r := int64(isqrtU64(uint64(dh) << 32))
	return gptDims{
		n: c.Tokens(), d: c.Dim, f: c.FF, t: c.Context, batch: c.Batch, heads: c.Heads, dh: dh, bits: c.Bits,
		lim:   int64(1)<<c.Bits - 1,
		kappa: roundDivPos(94548<<16, r), iota: roundDivPos(1<<32, r),
	}
}

// isqrtU64 is ⌊√x⌋ (fixed.Isqrt).
func isqrtU64(x uint64) uint64 {
	if x < 2 {
		return x
	}
	r := uint64(1) << ((bits.Len64(x) + 1) / 2)
	for {
		n := (r + x/r) / 2
		if n >= r {
			return r
		}
		r = n
	}
}

// roundDivPos is RoundDiv(a, d) of §20.9 for a ≥ 0, d > 0.
func roundDivPos(a, d int64) int64 {
	q, r := a/d, a%d
	if r >= d-r {
		q++
	}
	return q
}

// gptKernel records one operator kind.
type gptKernel struct {
	// scratch returns the bytes of device scratch memory op needs (nil
	// func or 0: none).
	scratch func(c gpt.Config, op gptref.Op) uint64
	// record records op's dispatches on r, with r.barrier() between
	// dependent dispatches (the caller puts a barrier after the op). bufs
	// holds the device buffer of every input and output tensor of op,
	// keyed by tensor name.
	record func(k *gptKit, r *recorder, op gptref.Op, bufs map[string]*buffer, scratch *buffer) error
}

// gptKernels are the kernels by gptref.Op.Kind; each file fills its kinds
// in init().
var gptKernels = map[string]gptKernel{}

// gptMissingKinds lists the operator kinds of g that have no kernel.
func gptMissingKinds(g *gptref.Graph) []string {
	var missing []string
	for _, op := range g.Ops() {
		if _, ok := gptKernels[op.Kind]; !ok && !slices.Contains(missing, op.Kind) {
			missing = append(missing, op.Kind)
		}
	}
	return missing
}

// gptKit is what a kernel records with: the configuration, its sizes,
// the device, and the step's numbers on the device.
type gptKit struct {
	cfg  gpt.Config
	dims gptDims
	dev  *Device
	// step holds int64 {t, LR(t)} of the step being run (gpt.Config.LRAt):
	// the owner copies it to the device at the start of every step's
	// command buffer, so a pre-recorded step reads the right learning rate.
	step  *buffer
	pools []*descriptors
	// shapes are the graph's tensor shapes by name: a buffer may be
	// longer than its tensor (padding), and its padding is not zeroed.
	shapes map[string][]int
}

func newGPTKit(d *Device, c gpt.Config) *gptKit {
	k := &gptKit{cfg: c, dims: newGPTDims(c), dev: d, shapes: map[string][]int{}}
	if g, err := gptref.NewGraph(c); err == nil { // the callers validated c
		for _, info := range g.Tensors() {
			k.shapes[info.Name] = info.Shape
		}
	}
	return k
}

// elems is the element count of the named tensor.
func (k *gptKit) elems(name string) int {
	n := 1
	for _, s := range k.shapes[name] {
		n *= s
	}
	return n
}

// pipe returns the pipeline of shaders/<shader>.spv with bindings storage
// buffers and pushBytes of push constants, built once per device. The
// products (gpt_f_gemm, gpt_b_gemm) take their integer dot-product
// variant (shaders/dot.glsl: the same bits) where the device enabled it.
func (k *gptKit) pipe(shader string, bindings int, pushBytes uint32) (*pipeline, error) {
	if k.dev.dot && (shader == "gpt_f_gemm" || shader == "gpt_b_gemm") {
		shader += "_dot"
	}
	return k.dev.layoutPipeline(shader, bindings, pushBytes)
}

// set allocates a descriptor set for p binding bufs in order.
func (k *gptKit) set(p *pipeline, bufs ...*buffer) (uintptr, error) {
	if len(k.pools) > 0 {
		if s, err := k.pools[len(k.pools)-1].set(p, bufs...); err == nil {
			return s, nil
		}
	}
	// The last pool is full (or there is none): start another.
	const sets = 256
	ds, err := k.dev.newDescriptors(sets, sets*16)
	if err != nil {
		return 0, err
	}
	k.pools = append(k.pools, ds)
	return ds.set(p, bufs...)
}

// run records one dispatch of shaders/<shader>.spv over groups
// workgroups (x), binding bufs in order and pushing push (its length fixes
// the shader's push-constant size): the common case of pipe, set and
// dispatch.
func (k *gptKit) run(r *recorder, shader string, push []int32, groups uint32, bufs ...*buffer) error {
	p, err := k.pipe(shader, len(bufs), uint32(4*len(push)))
	if err != nil {
		return err
	}
	s, err := k.set(p, bufs...)
	if err != nil {
		return err
	}
	r.dispatch(p, s, push, groups, 1, 1)
	return nil
}

// destroy releases the kit's descriptor pools (the pipelines belong to the
// device).
func (k *gptKit) destroy() {
	for _, ds := range k.pools {
		ds.destroy()
	}
	k.pools = nil
}

// record records op with its kind's kernel.
func (k *gptKit) record(r *recorder, op gptref.Op, bufs map[string]*buffer, scratch *buffer) error {
	kern, ok := gptKernels[op.Kind]
	if !ok {
		return fmt.Errorf("%w: no Vulkan kernel for the GPT operator kind %q (%s)", ErrUnsupported, op.Kind, op.Name)
	}
	for _, name := range slices.Concat(op.Inputs, op.Outputs) {
		if bufs[name] == nil {
			return fmt.Errorf("vulkan: %s: no buffer for tensor %s", op.Name, name) // a bug in the caller
		}
	}
	if err := kern.record(k, r, op, bufs, scratch); err != nil {
		return fmt.Errorf("vulkan: recording %s: %w", op.Name, err)
	}
	return nil
}

// scratchBytes is the scratch memory op needs.
func (k *gptKit) scratchBytes(op gptref.Op) uint64 {
	if kern, ok := gptKernels[op.Kind]; ok && kern.scratch != nil {
		return kern.scratch(k.cfg, op)
	}
	return 0
}

// layoutPipeline returns the pipeline of the named shader with that
// layout (bindings, push bytes): built on first use and shared by every
// trainer of the device. pipeline takes the layout from shaderLayouts.
func (d *Device) layoutPipeline(name string, bindings int, push uint32) (*pipeline, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if p, ok := d.pipes[name]; ok {
		if p.bindings != bindings || p.pushSize != push {
			return nil, fmt.Errorf("vulkan: shader %s used with %d buffers and %d push bytes, built with %d and %d", name, bindings, push, p.bindings, p.pushSize) // a bug
		}
		return p, nil
	}
	code, err := shader(name)
	if err != nil {
		return nil, fmt.Errorf("vulkan: no shader %q: %v", name, err)
	}
	p, err := d.newPipeline(name, code, bindings, push)
	if err != nil {
		d.destroyPipeline(p)
		return nil, err
	}
	if d.pipes == nil {
		d.pipes = map[string]*pipeline{}
	}
	d.pipes[name] = p
	return p, nil
}

// gptGroups is the workgroup count for n items of per items each, capped
// at 65535: the GPT shaders loop over items by gl_NumWorkGroups, so any
// count covers every item.
func gptGroups(n, per int) uint32 {
	return uint32(max(1, min((n+per-1)/per, 65535)))
}

// tensorBytes is the size of a graph tensor's buffer: int64 elements.
func tensorBytes(info gptref.TensorInfo) uint64 {
	n := uint64(8)
	for _, s := range info.Shape {
		n *= uint64(s)
	}
	return n
}
