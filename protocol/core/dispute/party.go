package dispute

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/ref"
)

// Party is one side of a dispute as the referee sees it: the solver or the
// verifier. Every answer is checked; none is trusted.
type Party interface {
	// DigestAt returns the party's state digest after step steps.
	DigestAt(ctx context.Context, step int64) (merkle.Digest, error)
	// Claim returns the party's claim for step t: the hash of every tensor
	// of its operator trace of step t, computed from its state after t
	// steps.
	Claim(ctx context.Context, t int64) (Claim, error)
	// Open returns the value of the named tensor of that trace.
	Open(ctx context.Context, t int64, name string) (ref.Tensor, error)
	// OpenBatch returns step t's batch with its proofs: an MLP's samples,
	// each with its inclusion proof in the spec's training-set
	// commitment; a GPT's windows, each with its proof in the spec's text
	// commitment.
	OpenBatch(ctx context.Context, t int64) (*BatchOpening, error)
}

var _ Party = (*Replayer)(nil)

// BatchOpening is a step's batch with its proofs: an MLP's samples, each
// with its inclusion proof in the training set's Merkle tree (SPEC.md
// §6.4), or a GPT's windows, each with its proof in the corpus' text tree
// (§20.2, §20.5). One of the two is empty.
type BatchOpening struct {
	Samples []OpenedSample
	Windows []OpenedWindow
}

// OpenedSample is one sample of an MLP's batch.
type OpenedSample struct {
	Index    int // position in the training set
	Label    uint8
	Features []uint8
	Proof    merkle.Proof
}

// OpenedWindow is one window of a GPT's batch: the T+1 corpus bytes from
// Start (inputs Bytes[:T], targets Bytes[1:]) and the chunks that prove
// them.
type OpenedWindow struct {
	Start int64
	Bytes []byte
	Proof dataset.TextWindowProof
}

// trainCommitment returns the spec's training-set commitment.
func trainCommitment(s *spec.Spec) (dataset.Commitment, error) {
	r := s.Data.Train
	b, err := hex.DecodeString(r.Root)
	if err != nil || len(b) != len(merkle.Digest{}) {
		return dataset.Commitment{}, fmt.Errorf("dispute: spec's training root %q is not a digest", r.Root)
	}
	return dataset.Commitment{Root: merkle.Digest(b), Count: r.Count, Features: r.Features, Classes: r.Classes}, nil
}

// VerifyBatch checks that o is the batch of step t of s and returns it as
// the graph's two batch sources. For an MLP these are batch.x and batch.y:
// the samples the spec's batch order (SPEC.md §7) names, each proven
// against the spec's training-set root. For a GPT (s.IsGPT) they are
// tokens and targets: the windows §20.5 draws for step t, each proven
// against data.text's root and size (§20.2). It needs nothing but the
// spec: deriving the step's indices costs one permutation of the training
// set's indices (a GPT: B draws), no data.
func VerifyBatch(s *spec.Spec, t int64, o *BatchOpening) (b0, b1 ref.Tensor, err error) {
	if s.IsGPT() {
		return verifyWindows(s, t, o)
	}
	c, err := trainCommitment(s)
	if err != nil {
		return ref.Tensor{}, ref.Tensor{}, err
	}
	if o == nil || len(o.Samples) != s.BatchSize || len(o.Windows) != 0 {
		return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: the batch of step %d has %d samples", ErrBadOpening, t, s.BatchSize)
	}
	if t < 0 || t >= s.Steps {
		return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: step %d outside the job", ErrBadOpening, t)
	}
	idx := make([]int, s.BatchSize)
	s.NewSampler().Batch(t, idx)
	x := make([][]uint8, len(idx))
	y := make([]uint8, len(idx))
	for b, smp := range o.Samples {
		if smp.Index != idx[b] {
			return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: sample %d of step %d is %d, the batch order says %d", ErrBadOpening, b, t, smp.Index, idx[b])
		}
		if err := dataset.VerifySample(c, smp.Index, smp.Features, smp.Label, smp.Proof); err != nil {
			return ref.Tensor{}, ref.Tensor{}, fmt.Errorf("%w: %w", ErrBadOpening, err)
		}
		x[b], y[b] = smp.Features, smp.Label
	}
	return ref.BatchTensors(x, y)
}

// StepFunc computes an MLP's step t from st operator by operator; the
// Replayer takes the state after the step from the trace (OpTrace.State).
// Tests substitute dishonest ones.
type StepFunc func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error)

// Honest is the StepFunc of the spec: ref.StepOps.
func Honest(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
	tr, _, err := ref.StepOps(s, st, t, x, y)
	return tr, err
}

// Replayer is a Party that computes its answers: from an opened state it
// replays steps with its step function (the spec's unless an option says
// otherwise) on its own copy of the data — an MLP's training set
// (NewReplayer) or a GPT's corpus (NewGPTReplayer). With the spec's step
// it is the honest solver and the honest verifier alike. It keeps every
// state it computes (a segment's worth) and the traces it was asked about.
type Replayer struct {
	spec  *spec.Spec
	job   spec.JobID
	lay   *layout
	first int64
	// step and gptStep are the options' step functions; model computes
	// with the one of the job's kind.
	step    StepFunc
	gptStep GPTStepFunc
	model   model

	mu     sync.Mutex
	states map[int64]*spec.State
	traces map[int64]*stepTrace
	hasher commit.Hasher
}

// stepTrace is one step computed operator by operator: every tensor's
// value, indexed like the graph's tensors, and the state after the step.
type stepTrace struct {
	values []ref.Tensor
	next   *spec.State
}

// model is what a Replayer needs of its kind of job: a step computed from
// a state, and the opening of a step's batch. The Replayer's lock is held
// during every call.
type model interface {
	trace(t int64, st *spec.State) (*stepTrace, error)
	openBatch(t int64) (*BatchOpening, error)
}

// ReplayerOption configures a Replayer.
type ReplayerOption func(*Replayer)

// WithStep replaces an MLP's step function (default Honest).
func WithStep(f StepFunc) ReplayerOption { return func(r *Replayer) { r.step = f } }

// newReplayer returns a Replayer of s from start with its options applied,
// its model still to be set.
func newReplayer(s *spec.Spec, start *spec.State, opts []ReplayerOption) (*Replayer, error) {
	lay, err := graphOf(s)
	if err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	if start == nil || start.Step < 0 || start.Step > s.Steps {
		return nil, fmt.Errorf("dispute: no start state within the job")
	}
	r := &Replayer{
		spec: s, job: job, lay: lay, first: start.Step,
		states: map[int64]*spec.State{start.Step: start.Clone()},
		traces: map[int64]*stepTrace{},
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// NewReplayer returns a party that replays the MLP s from start on data,
// which is checked against the spec's training-set commitment. Beside the
// data it holds the data's dataset.SampleTree, which keeps a hash per
// block of up to 2^10 samples rather than per sample (a few MB at
// spec.MaxDatasetBytes, not gigabytes).
func NewReplayer(s *spec.Spec, data *dataset.Dataset, start *spec.State, opts ...ReplayerOption) (*Replayer, error) {
	if s != nil && s.IsGPT() {
		return nil, fmt.Errorf("dispute: the job is a GPT: replay it with NewGPTReplayer on its corpus")
	}
	r, err := newReplayer(s, start, opts)
	if err != nil {
		return nil, err
	}
	if r.gptStep != nil {
		return nil, fmt.Errorf("dispute: WithGPTStep on an MLP job")
	}
	if r.step == nil {
		r.step = Honest
	}
	want, err := trainCommitment(s)
	if err != nil {
		return nil, err
	}
	tree := dataset.NewSampleTree(data)
	if tree.Commitment() != want {
		return nil, fmt.Errorf("dispute: the data does not match the spec's training-set commitment")
	}
	r.model = &mlpModel{spec: s, lay: r.lay, data: data, tree: tree, step: r.step, sampler: s.NewSampler()}
	return r, nil
}

// mlpModel replays an MLP on its training set.
type mlpModel struct {
	spec    *spec.Spec
	lay     *layout
	data    *dataset.Dataset
	tree    *dataset.SampleTree
	step    StepFunc
	sampler *spec.Sampler
}

// batch returns the samples of step t.
func (m *mlpModel) batch(t int64) ([][]uint8, []uint8, []int) {
	idx := make([]int, m.spec.BatchSize)
	m.sampler.Batch(t, idx)
	x, y := make([][]uint8, len(idx)), make([]uint8, len(idx))
	for b, i := range idx {
		x[b], y[b] = m.data.Sample(i)
	}
	return x, y, idx
}

func (m *mlpModel) trace(t int64, st *spec.State) (*stepTrace, error) {
	x, y, _ := m.batch(t)
	tr, err := m.step(m.spec, st.Clone(), t, x, y)
	if err != nil {
		return nil, err
	}
	if tr == nil || tr.Graph == nil || len(tr.Value) != len(m.lay.tensors) {
		return nil, fmt.Errorf("the step function returned no trace of the step's %d tensors", len(m.lay.tensors))
	}
	return &stepTrace{values: tr.Value, next: tr.State()}, nil
}

func (m *mlpModel) openBatch(t int64) (*BatchOpening, error) {
	x, y, idx := m.batch(t)
	// The tree keeps no hash per sample: ProveBatch rehashes each block
	// of the batch once, at most one pass over the data per batch.
	proofs, err := m.tree.ProveBatch(idx)
	if err != nil {
		return nil, err
	}
	o := &BatchOpening{Samples: make([]OpenedSample, len(idx))}
	for b, i := range idx {
		o.Samples[b] = OpenedSample{Index: i, Label: y[b], Features: append([]uint8(nil), x[b]...), Proof: proofs[b]}
	}
	return o, nil
}

// stateAt returns the state after step steps. Call with r.mu held.
func (r *Replayer) stateAt(ctx context.Context, step int64) (*spec.State, error) {
	if step < r.first || step > r.spec.Steps {
		return nil, fmt.Errorf("dispute: no state after %d steps (this party starts at %d)", step, r.first)
	}
	k := step
	for r.states[k] == nil {
		k--
	}
	for ; k < step; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_, asked := r.traces[k]
		tr, err := r.traceAt(k)
		if err != nil {
			return nil, err
		}
		r.states[k+1] = tr.next
		if !asked {
			delete(r.traces, k) // keep traces only when asked for them
		}
	}
	return r.states[step], nil
}

// traceAt computes the trace of step t from the state after t steps, which
// must be known. Call with r.mu held.
func (r *Replayer) traceAt(t int64) (*stepTrace, error) {
	if tr := r.traces[t]; tr != nil {
		return tr, nil
	}
	st := r.states[t]
	if st == nil {
		return nil, fmt.Errorf("dispute: no state after %d steps", t)
	}
	tr, err := r.model.trace(t, st)
	if err != nil {
		return nil, fmt.Errorf("dispute: step %d: %w", t, err)
	}
	r.traces[t] = tr
	return tr, nil
}

func (r *Replayer) tracedAt(ctx context.Context, t int64) (*stepTrace, error) {
	if t < r.first || t >= r.spec.Steps {
		return nil, fmt.Errorf("dispute: no step %d here", t)
	}
	if _, err := r.stateAt(ctx, t); err != nil {
		return nil, err
	}
	return r.traceAt(t)
}

// DigestAt implements Party.
func (r *Replayer) DigestAt(ctx context.Context, step int64) (merkle.Digest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stateAt(ctx, step)
	if err != nil {
		return merkle.Digest{}, err
	}
	return r.hasher.StateDigest(r.job, st), nil
}

// Claim implements Party.
func (r *Replayer) Claim(ctx context.Context, t int64) (Claim, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr, err := r.tracedAt(ctx, t)
	if err != nil {
		return Claim{}, err
	}
	return claimOf(r.lay.tensors, tr.values)
}

// Open implements Party.
func (r *Replayer) Open(ctx context.Context, t int64, name string) (ref.Tensor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr, err := r.tracedAt(ctx, t)
	if err != nil {
		return ref.Tensor{}, err
	}
	i := r.lay.index(name)
	if i < 0 {
		return ref.Tensor{}, fmt.Errorf("dispute: step %d has no tensor %q", t, name)
	}
	return tr.values[i].Clone(), nil
}

// OpenBatch implements Party.
func (r *Replayer) OpenBatch(ctx context.Context, t int64) (*BatchOpening, error) {
	if t < r.first || t >= r.spec.Steps {
		return nil, fmt.Errorf("dispute: no step %d here", t)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.model.openBatch(t)
}
