//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// Option configures a Trainer.
type Option func(*config)

type config struct {
	device     *Device
	deviceOpts []DeviceOption
	data       *dataset.Dataset
	tile       uint32 // 64 or 128: every product on that tile (tests); 0 chooses
}

// WithDevice trains on d, which the caller keeps and closes after the
// trainer. Without it the trainer opens (and closes) its own device,
// chosen by Open with the options of WithDeviceOptions.
func WithDevice(d *Device) Option { return func(c *config) { c.device = d } }

// WithData keeps the training set ds resident on the device, so that
// StepIndices needs only the batch's sample indices from the host (no
// feature bytes cross the bus). A set larger than one device buffer may
// span is not kept (Resident says so); Step works either way.
func WithData(ds *dataset.Dataset) Option { return func(c *config) { c.data = ds } }

// withTile runs every product on tiles of 64 or 128 (tests: both
// variants on small specs).
func withTile(tile uint32) Option { return func(c *config) { c.tile = tile } }

// WithDeviceOptions passes opts to Open when the trainer opens its own
// device.
func WithDeviceOptions(opts ...DeviceOption) Option {
	return func(c *config) { c.deviceOpts = append(c.deviceOpts, opts...) }
}

// Trainer runs training steps of one MLP job on a Vulkan device: the
// surface of engine.Engine, with the state kept on the device. A Trainer
// is not safe for concurrent use.
type Trainer struct {
	session // the device, memory, state transfers and failure
	s       *spec.Spec
	p       spec.Plan
	st      *spec.State
	desc    *descriptors

	layers  []gpuLayer
	logits  *buffer // batch × classes
	peaks   *buffer // per linear layer: peak |input gradient|
	xHost   *buffer // the batch's features, packed bytes
	xDev    *buffer // the same on the device (one copy per step)
	lrDev   *buffer // the learning rate on the device
	yHost   *buffer // labels, one uint32 each
	lrHost  *buffer // the step's learning rate, int64
	outHost *buffer // per-sample losses, int64
	logHost *buffer // logits read back by Predict
	stHost  *buffer // the state, staged both ways

	step, predict *recorder

	// The resident training set (WithData): feature bytes and labels on
	// the device, the batch's indices from the host, and the step that
	// gathers them.
	data               *dataset.Dataset
	dataDev, labelsDev *buffer
	yDev, idxHost      *buffer
	idxDev             *buffer
	stepIdx            *recorder

	tile uint32 // config.tile
	dot  bool   // the products run the integer dot-product path
}

// IntegerDot reports whether the trainer's products run on the device's
// packed 4×8-bit integer dot products (shaders/gemm.comp, DOT) rather
// than plain int32 multiply-adds: the device has and enabled
// shaderIntegerDotProduct (WithIntegerDot, BELUGA_VULKAN_DOT) and every
// operand fits 16 bits. The sums, hence the digests, are the same.
func (t *Trainer) IntegerDot() bool { return t.dot }

// dotOperands reports whether every product operand (inputs, including
// the feature bytes, activations, weights and gradients) lies in
// [-2^15, 2^15), the range in which the dot path's 8-bit split is exact;
// SPEC.md §3 (bits ≤ 15) makes it so for every valid spec.
func dotOperands(p spec.Plan) bool {
	return max(p.WMax, p.AMax, p.GMax, 255) < 1<<15
}

// gpuLayer is one linear layer's device buffers.
type gpuLayer struct {
	plan                spec.LinearPlan
	w, v, b, vb, wq, dw *buffer
	in                  *buffer // the layer's input, batch × In
	g                   *buffer // gradient w.r.t. its output, batch × Out
	stOff               [4]uint64
}

// New returns a trainer for st (which it now owns) under s, an MLP spec
// that passes spec.Validate, with st uploaded to the device.
func New(s *spec.Spec, st *spec.State, opts ...Option) (*Trainer, error) {
	if s == nil || st == nil {
		return nil, fmt.Errorf("vulkan: no spec or no state")
	}
	if s.IsGPT() {
		return nil, fmt.Errorf("%w: the spec is a GPT; the Vulkan backend trains MLPs only (for now)", ErrUnsupported)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("vulkan: %w", err)
	}
	if !sameShapes(s.NewState(), st) {
		return nil, fmt.Errorf("vulkan: state does not have the spec's tensors")
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.data != nil && (c.data.Features() != s.Data.Train.Features || c.data.Classes() > classesOf(s) || c.data.Len() == 0) {
		return nil, fmt.Errorf("vulkan: the resident data set has %d samples of %d features and %d classes; the spec wants %d features and %d classes",
			c.data.Len(), c.data.Features(), c.data.Classes(), s.Data.Train.Features, classesOf(s))
	}
	t := &Trainer{s: s, p: s.Plan(), st: st, data: c.data, tile: c.tile}
	if err := t.openDevice(c); err != nil {
		return nil, err
	}
	if err := t.build(); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.pushState(); err != nil {
		t.Close()
		return nil, err
	}
	if t.dataDev != nil {
		if err := t.pushData(); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

// classesOf is the spec's class count (its last layer's width).
func classesOf(s *spec.Spec) int {
	p := s.Plan()
	return p.Linear[len(p.Linear)-1].Out
}

func sameShapes(a, b *spec.State) bool {
	if len(a.Tensors) != len(b.Tensors) {
		return false
	}
	for i := range a.Tensors {
		ta, tb := a.Tensors[i], b.Tensors[i]
		if ta.Name != tb.Name || len(ta.Data) != len(tb.Data) || !slices.Equal(ta.Shape, tb.Shape) {
			return false
		}
	}
	return true
}

// Device returns the device the trainer runs on.
func (t *Trainer) Device() DeviceInfo { return t.dev.Info() }

// build creates the buffers, pipelines and the four command buffers.
func (t *Trainer) build() error {
	s, d := t.s, t.dev
	B := uint64(s.BatchSize)
	t.newArenas()
	var err error
	dev := func(name string, elems uint64) *buffer {
		if err != nil {
			return nil
		}
		var b *buffer
		b, err = t.devMem.add(name, elems*4)
		return b
	}
	host := func(name string, bytes uint64) *buffer {
		if err != nil {
			return nil
		}
		var b *buffer
		b, err = t.hostMem.add(name, bytes)
		return b
	}
	features := uint64(s.Data.Train.Features)
	classes := uint64(t.p.Linear[len(t.p.Linear)-1].Out)
	var stOff uint64
	in := dev("act0", B*features)
	for _, lp := range t.p.Linear {
		n, out := uint64(lp.Out)*uint64(lp.In), uint64(lp.Out)
		l := gpuLayer{plan: lp, in: in}
		name := fmt.Sprintf("layer%d.", lp.Index)
		l.w, l.v, l.wq, l.dw = dev(name+"w", n), dev(name+"v", n), dev(name+"wq", n), dev(name+"dw", n)
		l.b, l.vb = dev(name+"b", out), dev(name+"vb", out)
		l.g = dev(name+"g", B*out)
		if lp.Last {
			t.logits = dev("logits", B*out)
		} else {
			in = dev(fmt.Sprintf("act%d", lp.Index+1), B*out)
		}
		// Staging order per layer: weight, bias, weight momentum, bias
		// momentum (stateKinds).
		for k, size := range []uint64{n, out, n, out} {
			l.stOff[k] = stOff
			stOff += size * 4
		}
		t.layers = append(t.layers, l)
	}
	t.peaks = dev("peaks", uint64(len(t.layers)))
	t.xHost = host("x", (B*features+3)&^3)
	t.xDev = dev("x", (B*features+3)/4)
	t.lrDev = dev("lr", 2)
	t.yHost = host("y", B*4)
	t.lrHost = host("lr", 8)
	t.outHost = host("loss", B*8)
	t.logHost = host("logits", B*classes*4)
	t.stHost = host("state", stOff)
	if ds := t.data; ds != nil && err == nil {
		if n := (uint64(ds.Len())*features + 3) &^ 3; n <= d.info.MaxStorageBufferRange {
			t.dataDev = dev("data", n/4)
			t.labelsDev = dev("labels", uint64(ds.Len()))
			t.yDev = dev("y", B)
			t.idxHost = host("idx", B*4)
			t.idxDev = dev("idx", B)
		}
	}
	if err != nil {
		return err
	}
	if err := t.commitArenas(); err != nil {
		return err
	}
	return t.record()
}

// Shader push-constant sizes (bytes) and binding counts.
var shaderLayouts = map[string]struct {
	bindings int
	push     uint32
}{
	"unpack": {2, 4}, "gather": {5, 8}, "quantize": {2, 12}, "renorm": {2, 16}, "update": {6, 44}, "bias": {5, 40}, "loss": {4, 16},
	"gemm_fwd": {4, 48}, "gemm_dx": {5, 48}, "gemm_dw": {3, 48},
	"gemm_fwd_big": {4, 48}, "gemm_dx_big": {5, 48}, "gemm_dw_big": {3, 48},
}

func (t *Trainer) record() error {
	pipes := map[string]*pipeline{}
	t.dot = t.dev.dot && dotOperands(t.p)
	for name, l := range shaderLayouts {
		shaderName := name
		if t.dot && strings.HasPrefix(name, "gemm_") {
			shaderName += "_dot" // the same bindings and push constants
		}
		p, err := t.dev.layoutPipeline(shaderName, l.bindings, l.push)
		if err != nil {
			return err
		}
		pipes[name] = p
	}
	L := len(t.layers)
	var err error
	if t.cmdPool, err = t.dev.newCommandPool(); err != nil {
		return err
	}
	if t.desc, err = t.dev.newDescriptors(8*L+12, 40*L+60); err != nil {
		return err
	}
	set := func(p *pipeline, bufs ...*buffer) uintptr {
		if err != nil {
			return 0
		}
		var s uintptr
		s, err = t.desc.set(p, bufs...)
		return s
	}
	newCB := func() *recorder {
		if err != nil {
			return nil
		}
		var r *recorder
		r, err = t.dev.newCommandBuffer(t.cmdPool)
		return r
	}
	n := &t.s.Numeric
	B := uint32(t.s.BatchSize)
	features := uint32(t.s.Data.Train.Features)
	qshift := int32(n.MasterFrac - n.WeightFrac)
	unpackSet := set(pipes["unpack"], t.xDev, t.layers[0].in)
	fwdSets := make([]uintptr, L)
	quantSets := make([]uintptr, L)
	for j, l := range t.layers {
		out := t.logits
		if j+1 < L {
			out = t.layers[j+1].in
		}
		fwdSets[j] = set(pipes["gemm_fwd"+t.fwdPlan(j).suffix], l.in, l.wq, out, l.b)
		quantSets[j] = set(pipes["quantize"], l.w, l.wq)
	}
	if err != nil {
		return err
	}
	// Host inputs reach the device by one copy per submission, not by
	// every invocation reading across the bus.
	xBytes := (uint64(B)*uint64(features) + 3) &^ 3
	unpack := func(r *recorder) {
		r.copy(t.xHost, t.xDev, 0, 0, xBytes)
		r.copy(t.lrHost, t.lrDev, 0, 0, 8)
		r.barrier()
		r.dispatch(pipes["unpack"], unpackSet, []int32{int32(B * features)}, elemGroups(B*features), 1, 1)
	}
	forward := func(r *recorder, front func(*recorder)) {
		front(r)
		r.barrier()
		for j, l := range t.layers {
			lp := l.plan
			lo, hi := -lp.OutMax, lp.OutMax
			if lp.ReLU {
				lo = 0 // relu(clamp(z, ±max)) = clamp(z, 0, max)
			}
			sb := int32(n.MasterFrac - lp.InFrac - n.WeightFrac)
			// A(b,i) = in[b·In + i], B(i,o) = wq[o·In + i].
			gp := t.fwdPlan(j)
			gp.record(r, pipes["gemm_fwd"+gp.suffix], fwdSets[j], uint32(lp.In), 1, 1, uint32(lp.In),
				int32(lp.Shift), int32(lo), int32(hi), sb)
			r.barrier()
		}
	}

	// The training step: the batch from the host (Step) or gathered from
	// the resident data set (StepIndices), then the same commands.
	lossSet := set(pipes["loss"], t.logits, t.yHost, t.layers[L-1].g, t.outHost)
	var gatherSet, lossIdxSet uintptr
	if t.dataDev != nil {
		gatherSet = set(pipes["gather"], t.dataDev, t.labelsDev, t.idxDev, t.layers[0].in, t.yDev)
		lossIdxSet = set(pipes["loss"], t.logits, t.yDev, t.layers[L-1].g, t.outHost)
	}
	backs := make([]backSets, L)
	for j, l := range t.layers {
		b := &backs[j]
		if j > 0 {
			b.dx = set(pipes["gemm_dx"+t.dxPlan(j).suffix], l.g, l.wq, t.layers[j-1].g, l.in, t.peaks)
			b.renorm = set(pipes["renorm"], t.layers[j-1].g, t.peaks)
		}
		b.dw = set(pipes["gemm_dw"+t.dwPlan(j).suffix], l.g, l.in, l.dw)
		b.update = set(pipes["update"], l.w, l.v, l.wq, l.dw, t.peaks, t.lrDev)
		b.bias = set(pipes["bias"], l.g, l.b, l.vb, t.peaks, t.lrDev)
	}
	if err != nil {
		return err
	}
	classes := uint32(t.layers[L-1].plan.Out)
	if t.step = newCB(); err != nil {
		return err
	}
	t.recordStep(t.step, pipes, backs, func(r *recorder) { forward(r, unpack) }, lossSet)
	if err := t.step.end(); err != nil {
		return err
	}
	if t.dataDev != nil {
		if t.stepIdx = newCB(); err != nil {
			return err
		}
		gather := func(r *recorder) {
			r.copy(t.idxHost, t.idxDev, 0, 0, uint64(B)*4)
			r.copy(t.lrHost, t.lrDev, 0, 0, 8)
			r.barrier()
			r.dispatch(pipes["gather"], gatherSet, []int32{int32(B * features), int32(features)}, elemGroups(B*features), 1, 1)
		}
		t.recordStep(t.stepIdx, pipes, backs, func(r *recorder) { forward(r, gather) }, lossIdxSet)
		if err := t.stepIdx.end(); err != nil {
			return err
		}
	}

	// Prediction: the forward pass and the logits back to the host.
	if t.predict = newCB(); err != nil {
		return err
	}
	forward(t.predict, unpack)
	t.predict.copy(t.logits, t.logHost, 0, 0, uint64(B)*uint64(classes)*4)
	t.predict.hostBarrier()
	if err := t.predict.end(); err != nil {
		return err
	}

	// State upload: staged tensors to the device, forward weights
	// requantised, weight-gradient sums and peaks zeroed.
	if t.upload = newCB(); err != nil {
		return err
	}
	for j, l := range t.layers {
		for k, b := range []*buffer{l.w, l.b, l.v, l.vb} {
			t.upload.copy(t.stHost, b, l.stOff[k], 0, t.tensorBytes(j, k))
		}
		t.upload.fill(l.dw, 0)
	}
	t.upload.fill(t.peaks, 0)
	t.upload.barrier()
	for j, l := range t.layers {
		nw := uint32(l.plan.Out * l.plan.In)
		t.upload.dispatch(pipes["quantize"], quantSets[j], []int32{int32(nw), qshift, int32(t.p.WMax)}, elemGroups(nw), 1, 1)
	}
	t.upload.barrier()
	if err := t.upload.end(); err != nil {
		return err
	}

	// State download.
	if t.download = newCB(); err != nil {
		return err
	}
	for j, l := range t.layers {
		for k, b := range []*buffer{l.w, l.b, l.v, l.vb} {
			t.download.copy(b, t.stHost, 0, l.stOff[k], t.tensorBytes(j, k))
		}
	}
	t.download.hostBarrier()
	return t.download.end()
}

// backSets are the descriptor sets of one layer's backward pass.
type backSets struct{ dx, dw, update, bias, renorm uintptr }

// recordStep records a training step into r: the peaks zeroed, the
// forward pass (whose front fills the first layer's input), the loss with
// lossSet, and the backward pass and update of every layer.
func (t *Trainer) recordStep(r *recorder, pipes map[string]*pipeline, backs []backSets, forward func(*recorder), lossSet uintptr) {
	n := &t.s.Numeric
	o := &t.s.Optimizer
	L := len(t.layers)
	B := uint32(t.s.BatchSize)
	qshift := int32(n.MasterFrac - n.WeightFrac)
	classes := uint32(t.layers[L-1].plan.Out)
	r.fill(t.peaks, 0)
	r.barrier()
	forward(r)
	r.dispatch(pipes["loss"], lossSet, []int32{int32(B), int32(classes), int32(n.LogitFrac), int32(n.GradBits)}, (B+63)/64, 1, 1)
	r.barrier()
	gmax := int32(t.p.GMax)
	for j := L - 1; j >= 0; j-- {
		l := t.layers[j]
		lp := l.plan
		in, out := uint32(lp.In), uint32(lp.Out)
		if j > 0 {
			relu := int32(0)
			if t.layers[j-1].plan.ReLU {
				relu = 1
			}
			// dx(b,i) = Σ_o g[b·Out + o] · wq[o·In + i].
			gp := t.dxPlan(j)
			gp.record(r, pipes["gemm_dx"+gp.suffix], backs[j].dx, out, 1, in, 1, relu, int32(j), 0, 0)
		}
		// dw(o,i) = Σ_b g[b·Out + o] · in[b·In + i], split over the batch.
		gp := t.dwPlan(j)
		split := int32(0)
		if gp.splits > 1 {
			split = 1
		}
		gp.record(r, pipes["gemm_dw"+gp.suffix], backs[j].dw, 1, out, in, 1, split, 0, 0, 0)
		r.barrier()
		later := int32(L - 1 - j)
		gradBase := int32(-n.GradBits) - later*int32(n.WeightFrac)
		mu := o.Momentum
		r.dispatch(pipes["update"], backs[j].update, []int32{int32(out * in), gradBase - int32(lp.InFrac) + int32(n.MasterFrac),
			int32(j + 1), int32(L), int32(n.GradBits), int32(o.LRShift), int32(mu.Num), int32(mu.Shift), int32(t.p.MasterMax),
			qshift, int32(t.p.WMax)}, elemGroups(out*in), 1, 1)
		r.dispatch(pipes["bias"], backs[j].bias, []int32{int32(B), int32(out), gradBase + int32(n.MasterFrac), int32(j + 1), int32(L),
			int32(n.GradBits), int32(o.LRShift), int32(mu.Num), int32(mu.Shift), int32(t.p.MasterMax)}, min(out, 65535), 1, 1)
		if j > 0 {
			r.dispatch(pipes["renorm"], backs[j].renorm, []int32{int32(B * in), int32(j), int32(n.GradBits), gmax}, elemGroups(B*in), 1, 1)
		}
		r.barrier()
	}
	r.hostBarrier()
}

// tensorBytes is the size of state tensor k (weight, bias, weight
// momentum, bias momentum) of layer j.
func (t *Trainer) tensorBytes(j, k int) uint64 {
	lp := t.layers[j].plan
	if k == 0 || k == 2 {
		return uint64(lp.Out) * uint64(lp.In) * 4
	}
	return uint64(lp.Out) * 4
}

// stateKinds maps the staging order to the state's tensor kinds.
var stateKinds = [4]int{spec.TensorWeight, spec.TensorBias, spec.TensorWeightMomentum, spec.TensorBiasMomentum}

func (t *Trainer) hostTensor(j, k int) []int32 {
	l := t.layers[j]
	n := t.tensorBytes(j, k) / 4
	return unsafe.Slice((*int32)(unsafe.Add(t.stHost.mapped, l.stOff[k])), n)
}

// elemGroups is the workgroup count of an element-wise shader over n
// elements (the shaders loop when n needs more than 65535 groups).
func elemGroups(n uint32) uint32 { return max(1, min((n+255)/256, 65535)) }

// gemmPlan is how one product C (M×N) = A (M×K) · B (K×N) runs: its tile
// (64, or 128 for large products: 4× the work per shared-memory read) and
// the split of its K range across workgroups (summed with atomicAdd).
// Neither changes a bit of the result.
type gemmPlan struct {
	M, N, K       uint32
	tile          uint32
	suffix        string // "" or "_big": which compiled variant
	chunk, splits uint32
}

// planGemm aims at enough workgroups to fill a large GPU (~512; at least
// 128 with 128-wide tiles), splitting K only where allowed, each split
// summing at least 256 terms.
func planGemm(M, N, K uint32, canSplit bool, force uint32) gemmPlan {
	plan := func(tile uint32) gemmPlan {
		tiles := ((M + tile - 1) / tile) * ((N + tile - 1) / tile)
		g := gemmPlan{M: M, N: N, K: K, tile: tile, chunk: K, splits: 1}
		if tile == 128 {
			g.suffix = "_big"
		}
		if canSplit {
			s := max(1, min((K+255)/256, (512+tiles-1)/tiles, 64))
			g.chunk = ((K+s-1)/s + 15) &^ 15
			g.splits = (K + g.chunk - 1) / g.chunk
		}
		return g
	}
	if force != 0 {
		return plan(force)
	}
	if M >= 128 && N >= 128 {
		if g := plan(128); ((M+127)/128)*((N+127)/128)*g.splits >= 128 {
			return g
		}
	}
	return plan(64)
}

// The products of layer j: forward (batch × out, summing in), input
// gradient (batch × in, summing out) and weight gradient (out × in,
// summing the batch, split).
func (t *Trainer) fwdPlan(j int) gemmPlan {
	lp := t.layers[j].plan
	return planGemm(uint32(t.s.BatchSize), uint32(lp.Out), uint32(lp.In), false, t.tile)
}

func (t *Trainer) dxPlan(j int) gemmPlan {
	lp := t.layers[j].plan
	return planGemm(uint32(t.s.BatchSize), uint32(lp.In), uint32(lp.Out), false, t.tile)
}

func (t *Trainer) dwPlan(j int) gemmPlan {
	lp := t.layers[j].plan
	return planGemm(uint32(lp.Out), uint32(lp.In), uint32(t.s.BatchSize), true, t.tile)
}

// record dispatches the product (see shaders/gemm.comp) with A(m,k) =
// a[m·aRow + k·aCol], B(k,n) = b[k·bRow + n·bCol] and the mode's
// parameters p0..p3.
func (g gemmPlan) record(r *recorder, p *pipeline, set uintptr, aRow, aCol, bRow, bCol uint32, p0, p1, p2, p3 int32) {
	push := []int32{int32(g.M), int32(g.N), int32(g.K), int32(aRow), int32(aCol), int32(bRow), int32(bCol), int32(g.chunk), p0, p1, p2, p3}
	r.dispatch(p, set, push, (g.N+g.tile-1)/g.tile, (g.M+g.tile-1)/g.tile, g.splits)
}

// pushState uploads st to the device.
func (t *Trainer) pushState() error {
	return t.session.pushState(func() {
		for j := range t.layers {
			for k, kind := range stateKinds {
				copy(t.hostTensor(j, k), t.st.Layer(j, kind))
			}
		}
	})
}

// syncIn uploads st if the caller changed it since it was last synced.
func (t *Trainer) syncIn() error {
	return t.session.syncIn(t.changed, t.pushState)
}

// changed reports whether st differs from the staged state.
func (t *Trainer) changed() bool {
	for j := range t.layers {
		for k, kind := range stateKinds {
			a, b := t.hostTensor(j, k), t.st.Layer(j, kind)
			if !bytes.Equal(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(a))), len(a)*4),
				unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b)*4)) {
				return true
			}
		}
	}
	return false
}

// State returns the trainer's state, copied back from the device if a
// step ran since the last call. Callers may change its values between
// steps (the next Step uploads them) but not its shape. If the copy
// fails (a lost device) the tensors are those last copied, not the
// step's, and every later Step returns the error: callers that commit to
// the state call Sync and check its error first.
func (t *Trainer) State() *spec.State {
	t.Sync()
	return t.st
}

// Sync copies the device's state into State() if a step ran since the
// last copy.
func (t *Trainer) Sync() error {
	return t.sync(func() {
		for j := range t.layers {
			for k, kind := range stateKinds {
				copy(t.st.Layer(j, kind), t.hostTensor(j, k))
			}
		}
	})
}

// Steps returns the number of steps the state has had (State().Step)
// without copying the state back from the device.
func (t *Trainer) Steps() int64 { return t.st.Step }

// Step applies the next step, number State().Step, to the batch x, y (the
// samples the spec's Sampler names, in order) and returns its summed loss
// in Q16 (SPEC.md §8): one submission to the device.
func (t *Trainer) Step(x [][]uint8, y []uint8) (lossQ16 int64, err error) {
	B := t.s.BatchSize
	if len(x) != B || len(y) != B {
		return 0, fmt.Errorf("vulkan: batch has %d samples and %d labels, want %d", len(x), len(y), B)
	}
	features, classes := t.s.Data.Train.Features, t.layers[len(t.layers)-1].plan.Out
	for b := range x {
		if len(x[b]) != features || int(y[b]) >= classes {
			return 0, fmt.Errorf("vulkan: sample %d has %d features and label %d, want %d features and a label below %d", b, len(x[b]), y[b], features, classes)
		}
	}
	if err := t.usable(); err != nil {
		return 0, err
	}
	t.putBatch(x)
	ys := t.yHost.int32s()
	for b, v := range y {
		ys[b] = int32(v)
	}
	return t.run(t.step)
}

// Resident reports whether the training set of WithData is on the device
// (StepIndices can run).
func (t *Trainer) Resident() bool { return t.stepIdx != nil }

// pushData uploads the resident training set through a staging buffer.
func (t *Trainer) pushData() error {
	ds := t.data
	f := ds.Features()
	staging := &arena{d: t.dev, host: true}
	defer staging.destroy()
	xs, err := staging.add("data staging", t.dataDev.size)
	if err != nil {
		return err
	}
	ys, err := staging.add("labels staging", t.labelsDev.size)
	if err != nil {
		return err
	}
	if err := staging.commit(); err != nil {
		return err
	}
	xb, yb := xs.bytes(), ys.int32s()
	for i := range ds.Len() {
		x, y := ds.Sample(i)
		copy(xb[i*f:i*f+f], x)
		yb[i] = int32(y)
	}
	r, err := t.dev.newCommandBuffer(t.cmdPool)
	if r != nil {
		defer call(t.dev.fn.freeCommandBuffers, t.dev.handle, t.cmdPool, 1, uintptr(unsafe.Pointer(&r.cb)))
	}
	if err != nil {
		return err
	}
	r.copy(xs, t.dataDev, 0, 0, xs.size)
	r.copy(ys, t.labelsDev, 0, 0, ys.size)
	r.barrier()
	if err := r.end(); err != nil {
		return err
	}
	return t.dev.submit(r.cb)
}

// StepIndices is Step on the resident training set (WithData): the batch
// is the samples at idx, in order (the spec's Sampler's indices). Only the
// indices cross the bus.
func (t *Trainer) StepIndices(idx []int) (lossQ16 int64, err error) {
	if t.stepIdx == nil {
		return 0, fmt.Errorf("vulkan: StepIndices without a resident data set (WithData; Resident reports false when it is too large)")
	}
	B := t.s.BatchSize
	if len(idx) != B {
		return 0, fmt.Errorf("vulkan: batch has %d indices, want %d", len(idx), B)
	}
	if err := t.usable(); err != nil {
		return 0, err
	}
	n := t.data.Len()
	ih := t.idxHost.int32s()
	for b, i := range idx {
		if i < 0 || i >= n {
			return 0, fmt.Errorf("vulkan: sample index %d outside the data set's %d samples", i, n)
		}
		ih[b] = int32(i)
	}
	return t.run(t.stepIdx)
}

// run submits a recorded step and collects its loss.
func (t *Trainer) run(r *recorder) (lossQ16 int64, err error) {
	if err := t.usable(); err != nil {
		return 0, err
	}
	if err := t.syncIn(); err != nil {
		return 0, err
	}
	B := t.s.BatchSize
	t.lrHost.int64s()[0] = t.s.Optimizer.LRAt(t.st.Step)
	if err := t.runStep(r, fmt.Sprintf("step %d", t.st.Step)); err != nil {
		return 0, err
	}
	for _, l := range t.outHost.int64s()[:B] {
		lossQ16 += l
	}
	t.st.Step++
	return lossQ16, nil
}

// putBatch packs samples (at most BatchSize) into xHost, zeroing the rest.
func (t *Trainer) putBatch(x [][]uint8) {
	buf := t.xHost.bytes()
	f := t.s.Data.Train.Features
	for b, sample := range x {
		copy(buf[b*f:b*f+f], sample)
	}
	clear(buf[len(x)*f:])
}

// Predict writes the predicted class of each sample of x to out (SPEC.md
// §8.7), BatchSize samples per submission.
func (t *Trainer) Predict(x [][]uint8, out []int) error {
	if len(out) < len(x) {
		return fmt.Errorf("vulkan: %d outputs for %d samples", len(out), len(x))
	}
	features := t.s.Data.Train.Features
	classes := t.layers[len(t.layers)-1].plan.Out
	for b, sample := range x {
		if len(sample) != features {
			return fmt.Errorf("vulkan: sample %d has %d features, want %d", b, len(sample), features)
		}
	}
	if err := t.syncIn(); err != nil {
		return err
	}
	logits := t.logHost.int32s()
	for lo := 0; lo < len(x); lo += t.s.BatchSize {
		chunk := x[lo:min(lo+t.s.BatchSize, len(x))]
		t.putBatch(chunk)
		if err := t.dev.submit(t.predict.cb); err != nil {
			return err
		}
		for b := range chunk {
			row := logits[b*classes : b*classes+classes]
			best := 0
			for c, v := range row {
				if v > row[best] {
					best = c
				}
			}
			out[lo+b] = best
		}
	}
	return nil
}

// Close syncs the state back (State stays readable) and releases every
// Vulkan object of the trainer, and its device if it opened it.
func (t *Trainer) Close() error {
	return t.close(t.step != nil, t.Sync, t.desc.destroy)
}
