package dispute

import (
	"encoding/hex"
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/ref"
)

// A GPT's step (SPEC.md §20) in the game: its graph is spec/gptref's, its
// batch sources are tokens and targets, and its batch is B windows of the
// corpus that §20.5 draws for the step, each proven by the chunks that
// hold it (§20.2).

// GPTStepFunc computes a GPT step from st (st.Step = t) on the batch
// tokens, targets (N = B·T bytes each, row r = bT + j) operator by
// operator, and returns every tensor of the step by name, as
// gptref.Graph.Run does. The Replayer takes the state after the step from
// the next.* tensors. Tests substitute dishonest ones.
type GPTStepFunc func(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error)

// HonestGPT is the GPTStepFunc of the spec: gptref.Graph.Run.
func HonestGPT(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error) {
	return g.Run(st, tokens, targets)
}

// WithGPTStep replaces a GPT's step function (default HonestGPT).
func WithGPTStep(f GPTStepFunc) ReplayerOption { return func(r *Replayer) { r.gptStep = f } }

// textCommitment returns the spec's corpus commitment: data.text's root
// and size.
func textCommitment(s *spec.Spec) (root [32]byte, n int, err error) {
	t := s.Data.Text
	if t == nil {
		return root, 0, fmt.Errorf("dispute: the spec has no data.text")
	}
	b, err := hex.DecodeString(t.Root)
	if err != nil || len(b) != len(root) {
		return root, 0, fmt.Errorf("dispute: spec's text root %q is not a digest", t.Root)
	}
	return [32]byte(b), t.Bytes, nil
}

// NewGPTReplayer returns a party that replays the GPT s from start (a
// state in spec.GPTTensors' form) on text, which is checked against the
// spec's text commitment (data.text's root and size).
func NewGPTReplayer(s *spec.Spec, text *dataset.Text, start *spec.State, opts ...ReplayerOption) (*Replayer, error) {
	if s == nil || !s.IsGPT() {
		return nil, fmt.Errorf("dispute: the job is not a GPT: replay it with NewReplayer on its training set")
	}
	r, err := newReplayer(s, start, opts)
	if err != nil {
		return nil, err
	}
	if r.step != nil {
		return nil, fmt.Errorf("dispute: WithStep on a GPT job (use WithGPTStep)")
	}
	if r.gptStep == nil {
		r.gptStep = HonestGPT
	}
	c, err := s.GPT()
	if err != nil {
		return nil, err
	}
	split, err := s.TextSplit()
	if err != nil {
		return nil, err
	}
	root, n, err := textCommitment(s)
	if err != nil {
		return nil, err
	}
	if text == nil || text.Root() != root || text.Len() != n {
		return nil, fmt.Errorf("dispute: the corpus does not match the spec's text commitment")
	}
	if _, err := spec.GPTFromState(c, start); err != nil {
		return nil, fmt.Errorf("dispute: start state: %w", err)
	}
	g, ok := r.lay.g.(*gptref.Graph)
	if !ok {
		return nil, fmt.Errorf("dispute: a GPT job without a GPT graph")
	}
	r.model = &gptModel{cfg: c, g: g, lay: r.lay, text: text, nTrain: split.Train, step: r.gptStep}
	return r, nil
}

// gptModel replays a GPT on its corpus.
type gptModel struct {
	cfg    gpt.Config
	g      *gptref.Graph
	lay    *layout
	text   *dataset.Text
	nTrain int
	step   GPTStepFunc
}

// windows returns the starts of step t's windows (§20.5).
func (m *gptModel) windows(t int64) []int64 {
	return dataset.TrainWindows(m.cfg.Seed, t, m.cfg.Batch, m.cfg.Context, m.nTrain, nil)
}

func (m *gptModel) trace(t int64, st *spec.State) (*stepTrace, error) {
	gs, err := spec.GPTFromState(m.cfg, st)
	if err != nil {
		return nil, err
	}
	T := m.cfg.Context
	var tokens, targets []byte
	for _, start := range m.windows(t) {
		w, err := m.text.Bytes(int(start), T+1)
		if err != nil {
			return nil, err
		}
		tokens, targets = append(tokens, w[:T]...), append(targets, w[1:]...)
	}
	vals, err := m.step(m.g, gs, tokens, targets)
	if err != nil {
		return nil, err
	}
	values := make([]ref.Tensor, len(m.lay.tensors))
	for i, info := range m.lay.tensors {
		v, ok := vals[info.Name]
		if !ok {
			return nil, fmt.Errorf("the step function computed no %s", info.Name)
		}
		if err := info.Check(v); err != nil {
			return nil, err
		}
		values[i] = v
	}
	return &stepTrace{values: values, next: m.lay.stateAfter(values, t)}, nil
}

func (m *gptModel) openBatch(t int64) (*BatchOpening, error) {
	T := m.cfg.Context
	starts := m.windows(t)
	o := &BatchOpening{Windows: make([]OpenedWindow, len(starts))}
	for b, start := range starts {
		w, err := m.text.Bytes(int(start), T+1)
		if err != nil {
			return nil, err
		}
		p, err := m.text.WindowProof(int(start), T+1)
		if err != nil {
			return nil, err
		}
		o.Windows[b] = OpenedWindow{Start: start, Bytes: w, Proof: p}
	}
	return o, nil
}

// verifyWindows is VerifyBatch for a GPT: o must hold exactly the B
// windows of step t, in order, each T+1 bytes from the start §20.5 draws
// and proven against data.text's root and size; tokens and targets are
// their first and last T bytes, row r = bT + j.
func verifyWindows(s *spec.Spec, t int64, o *BatchOpening) (tokens, targets ref.Tensor, err error) {
	c, err := s.GPT()
	if err != nil {
		return ref.Tensor{}, ref.Tensor{}, err
	}
	split, err := s.TextSplit()
	if err != nil {
		return ref.Tensor{}, ref.Tensor{}, err
	}
	root, n, err := textCommitment(s)
	if err != nil {
		return ref.Tensor{}, ref.Tensor{}, err
	}
	if o == nil || len(o.Windows) != c.Batch || len(o.Samples) != 0 {
		return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: the batch of step %d has %d windows", ErrBadOpening, t, c.Batch)
	}
	if t < 0 || t >= s.Steps {
		return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: step %d outside the job", ErrBadOpening, t)
	}
	starts := dataset.TrainWindows(c.Seed, t, c.Batch, c.Context, split.Train, nil)
	T, N := c.Context, c.Tokens()
	tokens = ref.Tensor{Shape: []int{N}, Data: make([]int64, 0, N)}
	targets = ref.Tensor{Shape: []int{N}, Data: make([]int64, 0, N)}
	for b, w := range o.Windows {
		if w.Start != starts[b] {
			return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: window %d of step %d starts at %d, §20.5 draws %d", ErrBadOpening, b, t, w.Start, starts[b])
		}
		if len(w.Bytes) != T+1 {
			return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: window %d of step %d has %d bytes, want %d", ErrBadOpening, b, t, len(w.Bytes), T+1)
		}
		if err := dataset.VerifyWindow(root, n, int(w.Start), w.Bytes, w.Proof); err != nil {
			return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: window %d of step %d: %w", ErrBadOpening, b, t, err)
		}
		for j := range T {
			tokens.Data = append(tokens.Data, int64(w.Bytes[j]))
			targets.Data = append(targets.Data, int64(w.Bytes[j+1]))
		}
	}
	return tokens, targets, nil
}
