package gpt

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/par"
)

// Trainer runs training steps of one Config. It holds the activations a
// step saves for its backward pass and the scratch space of every
// operator, allocated once. A Trainer is not safe for concurrent use.
type Trainer struct {
	c       Config
	mm      *mm
	threads int
	team    *par.Team // the goroutines split loops run on
	params  []Param
	n       int // tokens per step

	// Per step, per parameter: the quantised weights and their packings.
	wq  [][]int16
	we  []int
	wT  []*kernel.Packed // Wᵀ (in × out) for the forward product
	wB  []*kernel.Packed // W (out × in) for the input gradient
	grd [][]int64        // dW, exact
	ge  []int            // its exponent
	// GPT-2 blocks: the tied head, tok_emb quantised like a matrix.
	headQ []int16
	headE int
	headT *kernel.Packed

	layers []layerActs
	fin    normActs // final RMSNorm
	x      []int32  // residual stream [N, D]
	logits []int64
	g      []int32 // loss gradient (Q15) [N, V]

	tmp    tmpBufs
	master *State // the state of the running step
}

// normActs is what RMSNorm saves: its output y (ActFrac), each row's rms
// r and prescale s, and y quantised for the next product, per row.
type normActs struct {
	y  []int32
	r  []int64
	s  []int
	yq []int16
	ye []int
}

type layerActs struct {
	n1, n2     normActs
	q, k, v    []int16 // [N, D] each
	eq, ek, ev []int   // per row
	p          []int16 // [B, H, T, T] in Q(bits)
	o          []int16 // attention output [N, D]
	eo         []int
	u          []int32  // MLP pre-activation [N, F], ActFrac
	sig        []uint16 // σ(u) in Q15
	h          []int16  // SiLU output quantised [N, F]
	eh         []int
}

type tmpBufs struct {
	acc     []int64 // [N, max(3D, F, V)]
	acc2    []int64
	qN      []int16 // [N, max(3D, F, V)] quantised gradient
	tN      []int16 // transposed operand
	xa      []int16 // a product's input aligned to one exponent
	dx      []int64 // residual gradient [N, D]
	dxe     int
	ds      []int64 // attention score gradients [B, H, T, T]
	dsq     []int16
	packs   sync.Pool // *kernel.Packed
	scratch sync.Pool // *attnScratch
}

// NewTrainer validates c and allocates a trainer that runs products on k
// with up to threads goroutines (≤ 0: GOMAXPROCS).
func NewTrainer(c Config, k kernel.Kernel, threads int) (*Trainer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	initTables()
	t := &Trainer{c: c, mm: newMM(k, threads), threads: threads, team: par.Shared(threads), params: c.Params(), n: c.Tokens()}
	n, d, f := t.n, c.Dim, c.FF
	np := len(t.params)
	t.wq, t.we, t.grd, t.ge = make([][]int16, np), make([]int, np), make([][]int64, np), make([]int, np)
	t.wT, t.wB = make([]*kernel.Packed, np), make([]*kernel.Packed, np)
	for i, p := range t.params {
		t.wq[i] = make([]int16, p.Rows*p.In+1)
		t.grd[i] = make([]int64, p.Rows*p.In)
		t.wT[i], t.wB[i] = new(kernel.Packed), new(kernel.Packed)
	}
	newNorm := func() normActs {
		return normActs{y: make([]int32, n*d), r: make([]int64, n), s: make([]int, n), yq: make([]int16, n*d+1), ye: make([]int, n)}
	}
	t.layers = make([]layerActs, c.Layers)
	for l := range t.layers {
		t.layers[l] = layerActs{n1: newNorm(), n2: newNorm(),
			q: make([]int16, n*d+1), k: make([]int16, n*d+1), v: make([]int16, n*d+1),
			p: make([]int16, c.Batch*c.Heads*c.Context*c.Context+1),
			o: make([]int16, n*d+1), u: make([]int32, n*f), sig: make([]uint16, n*f), h: make([]int16, n*f+1),
			eq: make([]int, n), ek: make([]int, n), ev: make([]int, n), eo: make([]int, n), eh: make([]int, n)}
	}
	t.fin = newNorm()
	if c.GPT2 {
		t.headQ, t.headT = make([]int16, Vocab*d+1), new(kernel.Packed)
	}
	t.x = make([]int32, n*d)
	t.logits = make([]int64, n*Vocab)
	t.g = make([]int32, n*Vocab)
	w := max(3*d, f, Vocab)
	t.tmp.acc = make([]int64, n*w)
	t.tmp.acc2 = make([]int64, n*w)
	t.tmp.qN = make([]int16, n*w+1)
	t.tmp.tN = make([]int16, n*w+1)
	t.tmp.xa = make([]int16, n*max(d, f)+1)
	t.tmp.dx = make([]int64, n*d)
	t.tmp.ds = make([]int64, c.Batch*c.Heads*c.Context*c.Context)
	t.tmp.dsq = make([]int16, c.Batch*c.Heads*c.Context*c.Context+1)
	return t, nil
}

// Config returns the trainer's configuration.
func (t *Trainer) Config() Config { return t.c }

func (t *Trainer) opMax() int64 { return int64(1)<<t.c.Bits - 1 }

// quantizeWeights computes wq = Norm(W, −MasterFrac, Bits) for every
// parameter and packs the matrices for the products.
func (t *Trainer) quantizeWeights(st *State) {
	b := t.c.Bits
	t.master = st
	t.parallel(len(t.params), func(i int) {
		p := t.params[i]
		n := p.Rows * p.In
		if p.Embedding || p.Vector {
			return // read unquantised
		}
		t.we[i] = Norm32(t.wq[i][:n], st.W[i], -MasterFrac, b)
		if !p.Embedding {
			kernel.PackBTransposed(t.wT[i], t.wq[i], p.In, p.Rows, p.In)
			kernel.PackB(t.wB[i], t.wq[i], p.Rows, p.In, p.In)
		}
	})
	if t.c.GPT2 {
		t.quantizeHead(st)
	}
}

// parallel runs f(0..n-1) on up to t.threads goroutines.
func (t *Trainer) parallel(n int, f func(i int)) {
	if t.threads <= 1 || n <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	t.team.Run(min(t.threads, n), func(int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			f(i)
		}
	})
}

// parallelRows splits [0, n) into contiguous ranges, one per thread.
func (t *Trainer) parallelRows(n int, f func(lo, hi int)) {
	th := min(t.threads, max(n/16, 1))
	if th <= 1 {
		f(0, n)
		return
	}
	t.team.Run(th, func(i int) { f(n*i/th, n*(i+1)/th) })
}

// Batch is one step's input: Tokens[b*T+i] is byte i of window b and
// Targets[b*T+i] the byte after it.
type Batch struct {
	Tokens, Targets []byte
}

// StepResult is what a step reports: the summed loss (Q16 nats, SPEC.md
// §"Loss") and the gradient norm before clipping (Q15).
type StepResult struct {
	LossQ16 int64
	NormQ15 int64
}

// Step runs one training step on st in place.
func (t *Trainer) Step(st *State, b Batch) (StepResult, error) {
	if t.c.GPT2 {
		return StepResult{}, ErrServedOnly
	}
	if err := t.checkBatch(b); err != nil {
		return StepResult{}, err
	}
	if err := checkState(t.params, st); err != nil {
		return StepResult{}, err
	}
	t.quantizeWeights(st)
	t.forward(b.Tokens)
	loss := t.loss(b.Targets, t.n)
	t.backward(b.Tokens)
	norm := t.update(st)
	st.Step++
	return StepResult{LossQ16: loss, NormQ15: norm}, nil
}

// Loss runs the forward pass only and returns the summed loss, in Q16
// nats, of the positions of the first windows windows of the batch (the
// others may hold anything, e.g. repeats that fill a last batch).
func (t *Trainer) Loss(st *State, b Batch, windows int) (int64, error) {
	if err := t.checkBatch(b); err != nil {
		return 0, err
	}
	if windows < 0 || windows > t.c.Batch {
		return 0, fmt.Errorf("%w: %d windows of a batch of %d", ErrConfig, windows, t.c.Batch)
	}
	if err := checkState(t.params, st); err != nil {
		return 0, err
	}
	t.quantizeWeights(st)
	t.forward(b.Tokens)
	return t.loss(b.Targets, windows*t.c.Context), nil
}

func (t *Trainer) checkBatch(b Batch) error {
	if len(b.Tokens) != t.n || len(b.Targets) != t.n {
		return fmt.Errorf("%w: batch of %d tokens and %d targets, want %d", ErrConfig, len(b.Tokens), len(b.Targets), t.n)
	}
	return nil
}

// pmaxAbs is maxAbs64 over x on the trainer's threads.
func (t *Trainer) pmaxAbs(x []int64) uint64 {
	const grain = 1 << 14
	if t.threads <= 1 || len(x) < 2*grain {
		return maxAbs64(x)
	}
	th := min(t.threads, len(x)/grain)
	ms := make([]uint64, th)
	t.team.Run(th, func(i int) { ms[i] = maxAbs64(x[len(x)*i/th : len(x)*(i+1)/th]) })
	return slices.Max(ms)
}

// norm is Norm on the trainer's threads.
func (t *Trainer) norm(dst []int16, x []int64, e, b int) int {
	s := normShift(t.pmaxAbs(x), b)
	const grain = 1 << 14
	if t.threads <= 1 || len(x) < 2*grain {
		quantize16(dst, x, s, b)
		return e + s
	}
	th := min(t.threads, len(x)/grain)
	t.team.Run(th, func(i int) {
		lo, hi := len(x)*i/th, len(x)*(i+1)/th
		quantize16(dst[lo:hi], x[lo:hi], s, b)
	})
	return e + s
}

// normWide is Norm to GradBits bits, into int64 storage, on the trainer's
// threads.
func (t *Trainer) normWide(dst, x []int64, e int) int {
	s := normShift(t.pmaxAbs(x), GradBits)
	t.parallelRows(len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] = normValue(x[i], s, GradBits)
		}
	})
	return e + s
}
