package model

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// TextBatch returns the batch of the windows of text that start at offs
// (SPEC.md §20.5): window b's tokens are bytes [o, o+T) and its targets
// bytes [o+1, o+T+1), T = c.Context. A list of fewer than c.Batch windows
// (a last validation batch) is filled by repeating its last window; the
// loss of such a batch counts only the first len(offs) (gpt.Trainer.Loss).
func TextBatch(text *dataset.Text, c gpt.Config, offs []int64) (gpt.Batch, error) {
	if len(offs) < 1 || len(offs) > c.Batch {
		return gpt.Batch{}, fmt.Errorf("model: %d windows for a batch of %d", len(offs), c.Batch)
	}
	T := c.Context
	b := gpt.Batch{Tokens: make([]byte, 0, c.Tokens()), Targets: make([]byte, 0, c.Tokens())}
	for i := range c.Batch {
		o := offs[min(i, len(offs)-1)]
		w, err := text.Bytes(int(o), T+1)
		if err != nil {
			return gpt.Batch{}, fmt.Errorf("model: window at %d: %w", o, err)
		}
		b.Tokens = append(b.Tokens, w[:T]...)
		b.Targets = append(b.Targets, w[1:]...)
	}
	return b, nil
}

// ValLoss returns the summed loss, in Q16 nats, of st on the windows of
// text that start at val (dataset.ValWindows), run tr.Config().Batch at a
// time, and the number of positions it sums: len(val)·T. Its bits per
// byte are lossQ16 / (2^16 · positions · ln 2) (SPEC.md §20.7).
func ValLoss(tr *gpt.Trainer, st *gpt.State, text *dataset.Text, val []int64) (lossQ16, positions int64, err error) {
	c := tr.Config()
	for i := 0; i < len(val); i += c.Batch {
		w := val[i:min(i+c.Batch, len(val))]
		b, err := TextBatch(text, c, w)
		if err != nil {
			return 0, 0, err
		}
		l, err := tr.Loss(st, b, len(w))
		if err != nil {
			return 0, 0, err
		}
		lossQ16 += l
	}
	return lossQ16, int64(len(val)) * int64(c.Context), nil
}

// gptRunner is spec/gpt behind the Runner interface. st is the canonical
// state; gs is the model's view of it: its int32 tensors (W, M) are st's
// slices, its int64 second moments (V) a copy, read from st before each
// step and written back after.
type gptRunner struct {
	c      gpt.Config
	tr     *gpt.Trainer
	text   *dataset.Text
	nTrain int
	val    []int64
	st     *spec.State
	gs     *gpt.State
	offs   []int64
}

func newGPTRunner(s *spec.Spec, d *Data, st *spec.State, o options) (*gptRunner, error) {
	r, err := gptRunnerOf(s, d, st)
	if err != nil {
		return nil, err
	}
	if r.tr, err = gpt.NewTrainer(r.c, o.kernel, o.threads); err != nil {
		return nil, err
	}
	return r, nil
}

// gptRunnerOf is what every GPT runner shares: the configuration, the
// split, the windows and st loaded as a gpt.State. The caller adds the
// trainer that computes the steps.
func gptRunnerOf(s *spec.Spec, d *Data, st *spec.State) (*gptRunner, error) {
	c, err := s.GPT()
	if err != nil {
		return nil, err
	}
	split, err := s.TextSplit()
	if err != nil {
		return nil, err
	}
	gs, err := spec.GPTFromState(c, st) // checks every tensor
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	r := &gptRunner{c: c, text: d.Text, nTrain: split.Train, st: st, gs: gs,
		val: dataset.ValWindows(split.Train, split.Val, c.Context, s.Data.Text.EvalWindows)}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// load points the model's state at st: W and M alias st's int32 tensors,
// V is read from its int64 tensors.
func (r *gptRunner) load() error {
	ts := r.st.Tensors
	if len(ts) != 3*len(r.gs.W) {
		return fmt.Errorf("model: the GPT state has %d tensors, want %d", len(ts), 3*len(r.gs.W))
	}
	for i := range r.gs.W {
		w, m, v := &ts[3*i], &ts[3*i+1], &ts[3*i+2]
		n := len(r.gs.V[i])
		if len(w.Data) != n || len(m.Data) != n || len(v.Data) != 2*n {
			return fmt.Errorf("model: GPT state tensors %q, %q, %q changed size", w.Name, m.Name, v.Name)
		}
		r.gs.W[i], r.gs.M[i] = w.Data, m.Data
		for j := range r.gs.V[i] {
			r.gs.V[i][j] = v.Int64At(j)
		}
	}
	r.gs.Step = r.st.Step
	return nil
}

// store writes the model's V and step count back to st (W and M are
// shared).
func (r *gptRunner) store() {
	for i, vs := range r.gs.V {
		t := &r.st.Tensors[3*i+2]
		for j, v := range vs {
			t.SetInt64(j, v)
		}
	}
	r.st.Step = r.gs.Step
}

func (r *gptRunner) State() *spec.State { return r.st }

func (r *gptRunner) Step() (int64, error) {
	if err := r.load(); err != nil {
		return 0, err
	}
	c := &r.c
	r.offs = dataset.TrainWindows(c.Seed, r.gs.Step, c.Batch, c.Context, r.nTrain, r.offs)
	b, err := TextBatch(r.text, r.c, r.offs)
	if err != nil {
		return 0, err
	}
	res, err := r.tr.Step(r.gs, b)
	if err != nil {
		return 0, err
	}
	r.store()
	return res.LossQ16 / int64(c.Tokens()), nil
}

func (r *gptRunner) Eval() (Eval, error) {
	if err := r.load(); err != nil {
		return Eval{}, err
	}
	loss, n, err := ValLoss(r.tr, r.gs, r.text, r.val)
	if err != nil {
		return Eval{}, err
	}
	return Eval{ValLossQ16: loss, ValPositions: n}, nil
}
