// Package engine is the fast training step: the same integer semantics as
// the reference (spec/ref, SPEC.md §8) on int16 operands and int32
// accumulators, with the matrix products in spec/kernel (AVX-512 VNNI where
// the CPU has it) and the element-wise work split across cores.
//
// # Bit-exactness
//
// Every matrix product is an exact integer sum that spec.Validate has shown
// to fit in int32 (SPEC.md §10), so the kernel, its blocking and the thread
// count cannot change a bit; every element-wise operation is the reference's
// operation on the same integers. Tests compare per-step state digests with
// spec/ref on random specs, for every kernel and thread count.
package engine

import (
	"fmt"
	"runtime"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/par"
	"github.com/beluga-compute/beluga/spec/ref"
)

// Option configures an Engine.
type Option func(*config)

type config struct {
	kernel   kernel.Kernel
	threads  int
	team     *par.Team // the goroutines parallel runs shares on
	minShare int       // least elements per goroutine; tests lower it to split small steps
}

// WithKernel selects the matrix kernel (default kernel.Best()).
func WithKernel(k kernel.Kernel) Option { return func(c *config) { c.kernel = k } }

// WithThreads sets how many goroutines a step uses (default GOMAXPROCS).
func WithThreads(n int) Option { return func(c *config) { c.threads = n } }

// Engine runs training steps of one job on a state it owns.
type Engine struct {
	s        *spec.Spec
	p        spec.Plan
	st       *spec.State
	gemm     kernel.Kernel
	threads  int
	team     *par.Team // the goroutines parallel runs shares on
	minShare int
	simd     bool // vector element-wise loops (with any kernel but the pure-Go one)
	layers   []layer
	logits   []int32       // batch × classes
	gT       []int16       // transpose scratch: out × kernel.TransposeStride(batch)
	gPacked  kernel.Packed // a layer's output gradient, packed for the transpose
}

// layer holds the buffers of one linear layer.
type layer struct {
	plan   spec.LinearPlan
	ldIn   int     // row stride of in: In rounded up to even
	ldOut  int     // row stride of g: Out rounded up to even
	wq     []int16 // quantised weights, out × ldIn
	bq     []int32 // quantised biases in accumulator format
	fwd    kernel.Packed
	bwd    kernel.Packed // wq as a K=out × N=in matrix, for the input gradient
	act    kernel.Packed // this layer's input as K=batch × N=in, for the weight gradient
	in     []int16       // this layer's input, batch × ldIn
	acc    []int32       // forward accumulators, batch × out
	g      []int16       // gradient w.r.t. this layer's output, batch × ldOut
	dw     []int32       // weight gradient, out × in
	dx     []int32       // input gradient before renormalisation, batch × in
	db     []int64       // bias gradient
	gradEx int           // exponent of g
}

// New returns an engine that trains st (which it now owns) under s. s must
// have passed spec.Validate.
func New(s *spec.Spec, st *spec.State, opts ...Option) (*Engine, error) {
	c := config{kernel: kernel.Best(), threads: runtime.GOMAXPROCS(0), minShare: minShare}
	for _, o := range opts {
		o(&c)
	}
	if c.threads < 1 {
		return nil, fmt.Errorf("engine: %d threads", c.threads)
	}
	if s.IsGPT() {
		return nil, fmt.Errorf("engine: %w: the spec is a GPT; this engine trains MLPs (spec/gpt trains a GPT)", spec.ErrUnsupported)
	}
	p := s.Plan()
	if want := s.NewState(); !sameShapes(want, st) {
		return nil, fmt.Errorf("engine: state does not have the spec's tensors")
	}
	e := &Engine{s: s, p: p, st: st, gemm: kernel.Parallel(c.kernel, c.threads, kernel.MinShareMACs(c.minShare*64)),
		threads: c.threads, team: par.Shared(c.threads), minShare: max(c.minShare, 1),
		simd: haveSIMD && c.kernel.Name() != kernel.Generic().Name()}
	B := s.BatchSize
	maxOut := 0
	for _, lp := range p.Linear {
		l := layer{plan: lp, ldIn: even(lp.In), ldOut: even(lp.Out)}
		l.wq = make([]int16, lp.Out*l.ldIn)
		l.bq = make([]int32, lp.Out)
		l.in = make([]int16, B*l.ldIn)
		l.acc = make([]int32, B*lp.Out)
		l.g = make([]int16, B*l.ldOut)
		l.dw = make([]int32, lp.Out*lp.In)
		l.db = make([]int64, lp.Out)
		if !lp.First {
			l.dx = make([]int32, B*lp.In)
		}
		e.layers = append(e.layers, l)
		maxOut = max(maxOut, lp.Out)
	}
	e.logits = make([]int32, B*p.Linear[len(p.Linear)-1].Out)
	e.gT = make([]int16, maxOut*kernel.TransposeStride(B))
	for j := range e.layers {
		e.quantize(j)
	}
	return e, nil
}

func even(n int) int { return n + n&1 }

func sameShapes(a, b *spec.State) bool {
	if len(a.Tensors) != len(b.Tensors) {
		return false
	}
	for i := range a.Tensors {
		ta, tb := a.Tensors[i], b.Tensors[i]
		if ta.Name != tb.Name || len(ta.Data) != len(tb.Data) || fmt.Sprint(ta.Shape) != fmt.Sprint(tb.Shape) {
			return false
		}
	}
	return true
}

// State returns the engine's state. It changes with every Step; callers
// must not modify it.
func (e *Engine) State() *spec.State { return e.st }

// minShare is the least work (in elements) worth handing to another
// goroutine: the team's workers start a share in under a microsecond while
// they spin, but one that has parked takes a thread wake-up (~100 µs on
// small VMs, about what 200k element updates cost), so smaller loops run
// on the caller's thread.
const minShare = 1 << 16

// parallel runs fn over [0, n) split into up to e.threads contiguous
// ranges, each of at least minShare elements when every index stands for
// perIndex elements of work.
func (e *Engine) parallel(n, perIndex int, fn func(lo, hi int)) {
	t := min(e.threads, n*perIndex/e.minShare)
	if t <= 1 {
		fn(0, n)
		return
	}
	e.team.Run(t, func(w int) { fn(n*w/t, n*(w+1)/t) })
}

// quantize refreshes layer j's quantised weights, biases and packed
// weight matrices from the master state (SPEC.md §8.3).
func (e *Engine) quantize(j int) {
	l := &e.layers[j]
	w := e.st.Layer(j, spec.TensorWeight)
	in := l.plan.In
	e.parallel(l.plan.Out, in, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			e.quantizeRow(l.wq[o*l.ldIn:o*l.ldIn+in], w[o*in:o*in+in])
		}
	})
	e.pack(j)
}

// quantizeRow writes the forward weights of one row of master weights:
// Clamp(RoundShift(w, master_frac - weight_frac), -W, W).
func (e *Engine) quantizeRow(dst []int16, w []int32) {
	sh := uint(e.s.Numeric.MasterFrac - e.s.Numeric.WeightFrac)
	half := int64(1) << sh >> 1
	wmax := e.p.WMax
	dst = dst[:len(w)]
	for i, v := range w {
		dst[i] = int16(min(max((int64(v)+half)>>sh, -wmax), wmax))
	}
}

// pack refreshes layer j's quantised biases and packed weight matrices from
// l.wq and the master biases.
func (e *Engine) pack(j int) {
	l := &e.layers[j]
	for o, v := range e.st.Layer(j, spec.TensorBias) {
		l.bq[o] = int32(ref.QuantizeBias(&e.s.Numeric, &l.plan, v))
	}
	kernel.PackBTransposed(&l.fwd, l.wq, l.plan.In, l.plan.Out, l.ldIn)
	if !l.plan.First {
		kernel.PackB(&l.bwd, l.wq, l.plan.Out, l.plan.In, l.ldIn)
	}
}
