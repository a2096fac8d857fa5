//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"fmt"
	"unsafe"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
)

// GPTTrainer runs training steps of one GPT job (SPEC.md §20) on a Vulkan
// device, bit for bit the steps of spec/gptref and spec/gpt: every
// operator of gptref's graph, in order, as one pre-recorded command
// buffer submitted once per step, over one device buffer per graph
// tensor. The state stays on the device; State copies it back when asked,
// and a Step first uploads any change a caller made to it. A failed
// submission is sticky, as for Trainer. A GPTTrainer is not safe for
// concurrent use.
type GPTTrainer struct {
	session // the device, memory, state transfers and failure
	c       gpt.Config
	g       *gptref.Graph
	st      *gpt.State
	kit     *gptKit

	bufs    map[string]*buffer // every graph tensor
	scratch *buffer            // shared by the operators (they run one after another)
	stHost  *buffer            // the state, staged both ways: per parameter W, M, V (int64 each)
	stOff   []uint64           // per parameter: where its W starts in stHost
	batch   *buffer            // tokens then targets, int64 each
	stepBuf *buffer            // {t, LR(t)}
	out     *buffer            // loss.sum, adamw.norm, then the rows' losses of a forward pass

	step, forward *recorder
}

// NewGPT returns a trainer for st (which it now owns) under c, with st
// uploaded to the device. Options: WithDevice, WithDeviceOptions (others
// are ignored).
func NewGPT(c gpt.Config, st *gpt.State, opts ...Option) (*GPTTrainer, error) {
	g, err := gptref.NewGraph(c) // validates c
	if err != nil {
		return nil, fmt.Errorf("vulkan: %w", err)
	}
	if missing := gptMissingKinds(g); len(missing) > 0 {
		return nil, fmt.Errorf("%w: the Vulkan GPT step has no kernel yet for the operator kinds %v", ErrUnsupported, missing)
	}
	if err := checkGPTState(c, st); err != nil {
		return nil, err
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	t := &GPTTrainer{c: c, g: g, st: st}
	if err := t.openDevice(cfg); err != nil {
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
	return t, nil
}

// checkGPTState checks that st has c's parameters and valid second moments.
func checkGPTState(c gpt.Config, st *gpt.State) error {
	ps := c.Params()
	if st == nil || len(st.W) != len(ps) || len(st.M) != len(ps) || len(st.V) != len(ps) {
		return fmt.Errorf("vulkan: the state does not have the model's %d parameters", len(ps))
	}
	if st.Step < 0 {
		return fmt.Errorf("vulkan: the state's step %d is negative", st.Step)
	}
	for i, p := range ps {
		n := p.Rows * p.In
		if len(st.W[i]) != n || len(st.M[i]) != n || len(st.V[i]) != n {
			return fmt.Errorf("vulkan: parameter %s of the state has the wrong size", p.Name)
		}
		for j, v := range st.V[i] {
			if v < 0 || v > gpt.MaxVar {
				return fmt.Errorf("vulkan: %s.v[%d] = %d outside [0, 2^46]", p.Name, j, v)
			}
		}
	}
	return nil
}

// Device returns the device the trainer runs on.
func (t *GPTTrainer) Device() DeviceInfo { return t.dev.Info() }

// Config returns the trainer's configuration.
func (t *GPTTrainer) Config() gpt.Config { return t.c }

// IntegerDot reports whether the trainer's products run on the device's
// packed 4×8-bit integer dot products (shaders/dot.glsl) rather than
// int32 multiply-adds (WithIntegerDot, BELUGA_VULKAN_DOT): the same bits.
func (t *GPTTrainer) IntegerDot() bool { return t.dev.dot }

// build creates the buffers and records the command buffers.
func (t *GPTTrainer) build() error {
	d := t.dev
	t.kit = newGPTKit(d, t.c)
	t.newArenas()
	t.bufs = map[string]*buffer{}
	var scratch uint64
	for _, op := range t.g.Ops() {
		scratch = max(scratch, t.kit.scratchBytes(op))
	}
	var err error
	for _, info := range t.g.Tensors() {
		if t.bufs[info.Name], err = t.devMem.add(info.Name, tensorBytes(info)); err != nil {
			return err
		}
	}
	if t.scratch, err = t.devMem.add("scratch", scratch); err != nil {
		return err
	}
	if t.kit.step, err = t.devMem.add("step", 16); err != nil {
		return err
	}
	var stBytes uint64
	for _, p := range t.c.Params() {
		t.stOff = append(t.stOff, stBytes)
		stBytes += 3 * 8 * uint64(p.Rows) * uint64(p.In)
	}
	n := uint64(t.c.Tokens())
	if t.stHost, err = t.hostMem.add("state", stBytes); err != nil {
		return err
	}
	if t.batch, err = t.hostMem.add("batch", 16*n); err != nil {
		return err
	}
	if t.stepBuf, err = t.hostMem.add("step", 16); err != nil {
		return err
	}
	if t.out, err = t.hostMem.add("out", 16+8*n); err != nil {
		return err
	}
	if err := t.commitArenas(); err != nil {
		return err
	}
	return t.record()
}

// stateTensors calls f for every state tensor: its device buffer and its
// place in stHost.
func (t *GPTTrainer) stateTensors(f func(dev *buffer, off, size uint64)) {
	for i, p := range t.c.Params() {
		size := 8 * uint64(p.Rows) * uint64(p.In)
		for k, suffix := range []string{"", ".m", ".v"} {
			f(t.bufs[p.Name+suffix], t.stOff[i]+uint64(k)*size, size)
		}
	}
}

func (t *GPTTrainer) record() error {
	d := t.dev
	var err error
	if t.cmdPool, err = d.newCommandPool(); err != nil {
		return err
	}
	newCB := func() *recorder {
		if err != nil {
			return nil
		}
		var r *recorder
		r, err = d.newCommandBuffer(t.cmdPool)
		return r
	}
	t.step, t.forward, t.upload, t.download = newCB(), newCB(), newCB(), newCB()
	if err != nil {
		return err
	}
	n := uint64(t.c.Tokens())
	ops := t.g.Ops()
	front := func(r *recorder) {
		r.copy(t.batch, t.bufs["tokens"], 0, 0, 8*n)
		r.copy(t.batch, t.bufs["targets"], 8*n, 0, 8*n)
		r.copy(t.stepBuf, t.kit.step, 0, 0, 16)
		r.barrier()
	}
	// The step: every operator in order, then the next state into the
	// state's buffers and the loss and norm to the host.
	front(t.step)
	for _, op := range ops {
		if err := t.kit.record(t.step, op, t.bufs, t.scratch); err != nil {
			return err
		}
		t.step.barrier()
	}
	t.stateTensors(func(dev *buffer, _, size uint64) {
		// next.P, next.P.m, next.P.v become P, P.m, P.v.
		t.step.copy(t.bufs["next."+dev.name], dev, 0, 0, size)
	})
	t.step.copy(t.bufs["loss.sum"], t.out, 0, 0, 8)
	t.step.copy(t.bufs["adamw.norm"], t.out, 0, 8, 8)
	t.step.hostBarrier()
	// The forward pass: the operators up to the loss, whose scratch then
	// holds the rows' losses.
	front(t.forward)
	for _, op := range ops {
		if err := t.kit.record(t.forward, op, t.bufs, t.scratch); err != nil {
			return err
		}
		t.forward.barrier()
		if op.Kind == "loss" {
			break
		}
	}
	t.forward.copy(t.scratch, t.out, 0, 16, 8*n)
	t.forward.hostBarrier()
	t.stateTensors(func(dev *buffer, off, size uint64) { t.upload.copy(t.stHost, dev, off, 0, size) })
	t.upload.barrier()
	t.stateTensors(func(dev *buffer, off, size uint64) { t.download.copy(dev, t.stHost, 0, off, size) })
	t.download.hostBarrier()
	for _, r := range []*recorder{t.step, t.forward, t.upload, t.download} {
		if err := r.end(); err != nil {
			return err
		}
	}
	return nil
}

// hostState returns parameter i's W, M and V in stHost.
func (t *GPTTrainer) hostState(i int) (w, m, v []int64) {
	n := uint64(len(t.st.W[i]))
	all := unsafe.Slice((*int64)(unsafe.Add(t.stHost.mapped, t.stOff[i])), 3*n)
	return all[:n], all[n : 2*n], all[2*n:]
}

// pushState uploads st to the device.
func (t *GPTTrainer) pushState() error {
	return t.session.pushState(func() {
		for i := range t.st.W {
			w, m, v := t.hostState(i)
			for j := range w {
				w[j], m[j] = int64(t.st.W[i][j]), int64(t.st.M[i][j])
			}
			copy(v, t.st.V[i])
		}
	})
}

// syncIn uploads st if the caller changed it since it was last synced.
// A changed state must still be a valid one.
func (t *GPTTrainer) syncIn() error {
	return t.session.syncIn(t.changed, func() error {
		if err := checkGPTState(t.c, t.st); err != nil {
			return err
		}
		return t.pushState()
	})
}

// changed reports whether st differs from the staged state.
func (t *GPTTrainer) changed() bool {
	for i := range t.st.W {
		w, m, v := t.hostState(i)
		for j := range w {
			if w[j] != int64(t.st.W[i][j]) || m[j] != int64(t.st.M[i][j]) || v[j] != t.st.V[i][j] {
				return true
			}
		}
	}
	return false
}

// State returns the trainer's state, copied back from the device if a
// step ran since the last call; see Trainer.State.
func (t *GPTTrainer) State() *gpt.State {
	t.Sync()
	return t.st
}

// Sync copies the device's state into State() if a step ran since then,
// as Trainer.Sync does.
func (t *GPTTrainer) Sync() error {
	return t.sync(func() {
		for i := range t.st.W {
			w, m, v := t.hostState(i)
			for j := range w {
				t.st.W[i][j], t.st.M[i][j] = int32(w[j]), int32(m[j])
			}
			copy(t.st.V[i], v)
		}
	})
}

// Steps returns the number of steps the state has had (State().Step)
// without copying the state back.
func (t *GPTTrainer) Steps() int64 { return t.st.Step }

// putBatch checks b and stages it with the step's numbers.
func (t *GPTTrainer) putBatch(b gpt.Batch) error {
	n := t.c.Tokens()
	if len(b.Tokens) != n || len(b.Targets) != n {
		return fmt.Errorf("vulkan: batch of %d tokens and %d targets, want %d each", len(b.Tokens), len(b.Targets), n)
	}
	if err := t.syncIn(); err != nil { // or the trainer is not usable
		return err
	}
	buf := t.batch.int64s()
	for i := range n {
		buf[i], buf[n+i] = int64(b.Tokens[i]), int64(b.Targets[i])
	}
	s := t.stepBuf.int64s()
	s[0], s[1] = t.st.Step, t.c.LRAt(t.st.Step)
	return nil
}

// Step applies the next step, number State().Step, to the batch b and
// returns its summed loss and gradient norm (gpt.Trainer.Step's): one
// submission to the device.
func (t *GPTTrainer) Step(b gpt.Batch) (gpt.StepResult, error) {
	if err := t.putBatch(b); err != nil {
		return gpt.StepResult{}, err
	}
	if err := t.runStep(t.step, fmt.Sprintf("GPT step %d", t.st.Step)); err != nil {
		return gpt.StepResult{}, err
	}
	out := t.out.int64s()
	t.st.Step++
	return gpt.StepResult{LossQ16: out[0], NormQ15: out[1]}, nil
}

// Loss runs the forward pass only on the device and returns the summed
// loss, in Q16 nats, of the positions of the first windows windows of the
// batch (gpt.Trainer.Loss's). The state does not change.
func (t *GPTTrainer) Loss(b gpt.Batch, windows int) (int64, error) {
	if windows < 0 || windows > t.c.Batch {
		return 0, fmt.Errorf("vulkan: %d windows of a batch of %d", windows, t.c.Batch)
	}
	if err := t.putBatch(b); err != nil {
		return 0, err
	}
	if err := t.dev.submit(t.forward.cb); err != nil {
		return 0, err
	}
	var sum int64
	for _, l := range t.out.int64s()[2 : 2+windows*t.c.Context] {
		sum += l
	}
	return sum, nil
}

// Close syncs the state back (State stays readable) and releases every
// Vulkan object of the trainer, and its device if it opened it.
func (t *GPTTrainer) Close() error {
	return t.close(t.step != nil, t.Sync, func() {
		if t.kit != nil {
			t.kit.destroy()
		}
	})
}
