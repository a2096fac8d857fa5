package model

import (
	"fmt"
	"runtime"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// Runner trains one job's state a step at a time.
//
// State returns the canonical state, the same pointer for the runner's
// life: it changes in place with every Step. A caller may change its
// tensor values between steps (a test's injected fault); the next Step
// starts from the changed values. A Runner is not safe for concurrent
// use. A runner that holds device resources (WithBackend(BackendVulkan))
// also implements io.Closer: close it when done.
type Runner interface {
	// State returns the state after the steps run so far.
	State() *spec.State
	// Step runs training step State().Step (its batch drawn from the
	// spec's seed and the step number) and returns the batch's mean loss
	// in Q16 nats: per sample for an MLP, per position for a GPT,
	// rounded toward zero.
	Step() (lossQ16 int64, err error)
	// Eval evaluates the current state on the held-out data.
	Eval() (Eval, error)
}

// Eval is an evaluation of a state on held-out data.
type Eval struct {
	// TestCorrect of TestTotal test samples are classified correctly (an
	// MLP; TestTotal is 0 without a test split).
	TestCorrect, TestTotal int
	// ValLossQ16 is the summed loss, in Q16 nats, of ValPositions
	// validation positions (a GPT; ValPositions is 0 otherwise): the
	// validation windows of SPEC.md §20.6, each run whole. Bits per byte
	// (§20.7) are ValLossQ16 / (2^16 · ValPositions · ln 2), a division
	// left to the caller because this package is float-free.
	ValLossQ16, ValPositions int64
}

// Option configures a Runner.
type Option func(*options)

type options struct {
	kernel  kernel.Kernel
	threads int
	backend Backend        // backend.go
	device  *vulkan.Device // WithVulkanDevice
}

// WithKernel runs matrix products on k (default kernel.Best()).
func WithKernel(k kernel.Kernel) Option { return func(o *options) { o.kernel = k } }

// WithThreads runs on n threads (default: runtime.GOMAXPROCS(0)).
func WithThreads(n int) Option { return func(o *options) { o.threads = n } }

// NewRunner returns a runner that trains st, a state of s (InitState, or a
// checkpoint read with StateTemplate), on data, which must be s's
// (CheckData). The runner owns st from now on.
func NewRunner(s *spec.Spec, data *Data, st *spec.State, opts ...Option) (Runner, error) {
	o := options{kernel: kernel.Best(), threads: runtime.GOMAXPROCS(0)}
	for _, f := range opts {
		f(&o)
	}
	if o.threads < 1 {
		return nil, fmt.Errorf("model: %d threads", o.threads)
	}
	if st == nil {
		return nil, fmt.Errorf("model: no state")
	}
	if err := s.CheckTrainable(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if err := CheckData(s, data); err != nil {
		return nil, err
	}
	onVulkan, err := vulkanFor(s, o)
	if err != nil {
		return nil, err
	}
	if s.IsGPT() {
		if onVulkan {
			r, err := newVulkanGPTRunner(s, data, st, o)
			if err == nil || o.backend == BackendVulkan {
				return r, err
			}
			// auto, and no GPU, or one that cannot take this job: the CPU.
		}
		return newGPTRunner(s, data, st, o)
	}
	if onVulkan {
		r, err := newVulkanRunner(s, data, st, o)
		if err == nil || o.backend == BackendVulkan {
			return r, err
		}
		// auto, and no GPU, or one that cannot take this job: the CPU.
	}
	return newMLPRunner(s, data, st, o)
}

// InitState returns the state of s before step 0: s.Init() for an MLP,
// spec.GPTTensors of the model's initial state for a GPT.
func InitState(s *spec.Spec) (*spec.State, error) {
	if !s.IsGPT() {
		return s.Init(), nil
	}
	c, err := s.GPT()
	if err != nil {
		return nil, err
	}
	return spec.GPTTensors(c, c.Init()), nil
}

// StateTemplate returns a zero state with exactly the tensors of a state
// of s (names, shapes, element types, in order): what
// store.CheckpointStore.GetState restores a checkpoint of s into.
func StateTemplate(s *spec.Spec) (*spec.State, error) {
	if !s.IsGPT() {
		return s.NewState(), nil
	}
	c, err := s.GPT()
	if err != nil {
		return nil, err
	}
	ps := c.Params()
	z := &gpt.State{W: make([][]int32, len(ps)), M: make([][]int32, len(ps)), V: make([][]int64, len(ps))}
	for i, p := range ps {
		n := p.Rows * p.In
		z.W[i], z.M[i], z.V[i] = make([]int32, n), make([]int32, n), make([]int64, n)
	}
	return spec.GPTTensors(c, z), nil
}
