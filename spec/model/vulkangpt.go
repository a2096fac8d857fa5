package model

import (
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// vulkanGPTRunner is spec/vulkan's GPTTrainer behind the Runner
// interface: spec/gpt's steps, hence its digests, on a Vulkan device,
// the validation loss too. It shares gptRunner's view of the canonical
// state (W and M alias st's tensors, V is copied each way); the state is
// copied back after every step, and changes a caller makes between steps
// are uploaded by the next one.
type vulkanGPTRunner struct {
	*gptRunner
	vt *vulkan.GPTTrainer
}

func newVulkanGPTRunner(s *spec.Spec, d *Data, st *spec.State, o options) (*vulkanGPTRunner, error) {
	g, err := gptRunnerOf(s, d, st)
	if err != nil {
		return nil, err
	}
	var opts []vulkan.Option
	switch {
	case o.device != nil:
		opts = append(opts, vulkan.WithDevice(o.device))
	case o.backend == BackendAuto:
		opts = append(opts, vulkan.WithDeviceOptions(vulkan.GPUOnly()))
	}
	vt, err := vulkan.NewGPT(g.c, g.gs, opts...)
	if err != nil {
		return nil, err
	}
	return &vulkanGPTRunner{gptRunner: g, vt: vt}, nil
}

func (r *vulkanGPTRunner) Step() (int64, error) {
	if err := r.load(); err != nil {
		return 0, err
	}
	c := &r.c
	r.offs = dataset.TrainWindows(c.Seed, r.gs.Step, c.Batch, c.Context, r.nTrain, r.offs)
	b, err := TextBatch(r.text, r.c, r.offs)
	if err != nil {
		return 0, err
	}
	res, err := r.vt.Step(b)
	if err != nil {
		return 0, err
	}
	if err := r.vt.Sync(); err != nil {
		return 0, err
	}
	r.store()
	return res.LossQ16 / int64(c.Tokens()), nil
}

// Eval is gptRunner.Eval's validation loss, each batch's forward pass on
// the device.
func (r *vulkanGPTRunner) Eval() (Eval, error) {
	if err := r.load(); err != nil {
		return Eval{}, err
	}
	c := r.c
	var loss int64
	for i := 0; i < len(r.val); i += c.Batch {
		w := r.val[i:min(i+c.Batch, len(r.val))]
		b, err := TextBatch(r.text, c, w)
		if err != nil {
			return Eval{}, err
		}
		l, err := r.vt.Loss(b, len(w))
		if err != nil {
			return Eval{}, err
		}
		loss += l
	}
	return Eval{ValLossQ16: loss, ValPositions: int64(len(r.val)) * int64(c.Context)}, nil
}

// Close releases the runner's device resources.
func (r *vulkanGPTRunner) Close() error { return r.vt.Close() }
