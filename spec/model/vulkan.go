package model

import (
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// vulkanRunner is spec/vulkan behind the Runner interface: the engine's
// steps, hence its digests, on a Vulkan device. The state is copied back
// after every step, so State's pointer stays current as the interface
// promises, and changes a caller makes between steps are uploaded by the
// next one.
type vulkanRunner struct {
	s     *spec.Spec
	st    *spec.State
	tr    *vulkan.Trainer
	batch *engine.Batcher
	sm    *spec.Sampler // with the training set resident on the device
	idx   []int
	test  *dataset.Dataset
}

func newVulkanRunner(s *spec.Spec, d *Data, st *spec.State, o options) (*vulkanRunner, error) {
	var opts []vulkan.Option
	switch {
	case o.device != nil:
		opts = append(opts, vulkan.WithDevice(o.device))
	case o.backend == BackendAuto:
		opts = append(opts, vulkan.WithDeviceOptions(vulkan.GPUOnly()))
	}
	tr, err := vulkan.New(s, st, append(opts, vulkan.WithData(d.Train))...)
	if err != nil {
		return nil, err
	}
	r := &vulkanRunner{s: s, st: st, tr: tr, test: d.Test}
	if tr.Resident() {
		r.sm, r.idx = s.NewSampler(), make([]int, s.BatchSize)
	} else {
		r.batch = engine.NewBatcher(s, d.Train)
	}
	return r, nil
}

func (r *vulkanRunner) State() *spec.State { return r.tr.State() }

func (r *vulkanRunner) Step() (int64, error) {
	var loss int64
	var err error
	if r.sm != nil {
		r.sm.Batch(r.st.Step, r.idx)
		loss, err = r.tr.StepIndices(r.idx)
	} else {
		loss, err = r.tr.Step(r.batch.Batch(r.st.Step))
	}
	if err != nil {
		return 0, err
	}
	if err := r.tr.Sync(); err != nil {
		return 0, err
	}
	return loss / int64(r.s.BatchSize), nil
}

func (r *vulkanRunner) Eval() (Eval, error) { return testAccuracy(r.test, r.tr.Predict) }

// Close releases the runner's device resources.
func (r *vulkanRunner) Close() error { return r.tr.Close() }
