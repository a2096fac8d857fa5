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
	// OpenBatch returns step t's batch with the inclusion proof of every
	// sample in the spec's training-set commitment.
	OpenBatch(ctx context.Context, t int64) (*BatchOpening, error)
}

var _ Party = (*Replayer)(nil)

// BatchOpening is a step's batch, sample by sample, each with its
// inclusion proof in the training set's Merkle tree (SPEC.md §6.4).
type BatchOpening struct {
	Samples []OpenedSample
}

// OpenedSample is one sample of a batch.
type OpenedSample struct {
	Index    int // position in the training set
	Label    uint8
	Features []uint8
	Proof    merkle.Proof
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

// VerifyBatch checks that o is the batch of step t of s — the samples the
// spec's batch order (SPEC.md §7) names, each proven against the spec's
// training-set root — and returns it as the graph's batch.x and batch.y.
// It needs nothing but the spec: deriving the step's indices costs one
// permutation of the training set's indices, no data.
func VerifyBatch(s *spec.Spec, t int64, o *BatchOpening) (bx, by ref.Tensor, err error) {
	c, err := trainCommitment(s)
	if err != nil {
		return ref.Tensor{}, ref.Tensor{}, err
	}
	if o == nil || len(o.Samples) != s.BatchSize {
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

// StepFunc computes step t from st operator by operator; the Replayer
// takes the state after the step from the trace (OpTrace.State). Tests
// substitute dishonest ones.
type StepFunc func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error)

// Honest is the StepFunc of the spec: ref.StepOps.
func Honest(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
	tr, _, err := ref.StepOps(s, st, t, x, y)
	return tr, err
}

// Replayer is a Party that computes its answers: from an opened state it
// replays steps with its StepFunc (Honest unless WithStep says otherwise)
// on its own copy of the training data. With Honest it is the honest
// solver and the honest verifier alike. It keeps every state it computes
// (a segment's worth) and the traces it was asked about. Beside the data
// it holds the data's dataset.SampleTree, which keeps a hash per block of
// up to 2^10 samples rather than per sample (a few MB at
// spec.MaxDatasetBytes, not gigabytes).
type Replayer struct {
	spec  *spec.Spec
	job   spec.JobID
	data  *dataset.Dataset
	tree  *dataset.SampleTree
	step  StepFunc
	first int64

	mu      sync.Mutex
	sampler *spec.Sampler
	states  map[int64]*spec.State
	traces  map[int64]*ref.OpTrace
	hasher  commit.Hasher
}

// ReplayerOption configures a Replayer.
type ReplayerOption func(*Replayer)

// WithStep replaces the step function (default Honest).
func WithStep(f StepFunc) ReplayerOption { return func(r *Replayer) { r.step = f } }

// NewReplayer returns a party that replays s from start on data, which is
// checked against the spec's training-set commitment.
func NewReplayer(s *spec.Spec, data *dataset.Dataset, start *spec.State, opts ...ReplayerOption) (*Replayer, error) {
	if _, err := ref.NewGraph(s); err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	want, err := trainCommitment(s)
	if err != nil {
		return nil, err
	}
	tree := dataset.NewSampleTree(data)
	if tree.Commitment() != want {
		return nil, fmt.Errorf("dispute: the data does not match the spec's training-set commitment")
	}
	if start == nil || start.Step < 0 || start.Step > s.Steps {
		return nil, fmt.Errorf("dispute: no start state within the job")
	}
	r := &Replayer{
		spec: s, job: job, data: data, tree: tree, step: Honest, first: start.Step,
		sampler: s.NewSampler(),
		states:  map[int64]*spec.State{start.Step: start.Clone()},
		traces:  map[int64]*ref.OpTrace{},
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// batch returns the samples of step t. Call with r.mu held.
func (r *Replayer) batch(t int64) ([][]uint8, []uint8, []int) {
	idx := make([]int, r.spec.BatchSize)
	r.sampler.Batch(t, idx)
	x, y := make([][]uint8, len(idx)), make([]uint8, len(idx))
	for b, i := range idx {
		x[b], y[b] = r.data.Sample(i)
	}
	return x, y, idx
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
		r.states[k+1] = tr.State()
		if !asked {
			delete(r.traces, k) // keep traces only when asked for them
		}
	}
	return r.states[step], nil
}

// traceAt computes the trace of step t from the state after t steps, which
// must be known. Call with r.mu held.
func (r *Replayer) traceAt(t int64) (*ref.OpTrace, error) {
	if tr := r.traces[t]; tr != nil {
		return tr, nil
	}
	st := r.states[t]
	if st == nil {
		return nil, fmt.Errorf("dispute: no state after %d steps", t)
	}
	x, y, _ := r.batch(t)
	tr, err := r.step(r.spec, st.Clone(), t, x, y)
	if err != nil {
		return nil, fmt.Errorf("dispute: step %d: %w", t, err)
	}
	r.traces[t] = tr
	return tr, nil
}

func (r *Replayer) tracedAt(ctx context.Context, t int64) (*ref.OpTrace, error) {
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
	return ClaimOf(tr)
}

// Open implements Party.
func (r *Replayer) Open(ctx context.Context, t int64, name string) (ref.Tensor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr, err := r.tracedAt(ctx, t)
	if err != nil {
		return ref.Tensor{}, err
	}
	v, ok := tr.Tensor(name)
	if !ok {
		return ref.Tensor{}, fmt.Errorf("dispute: step %d has no tensor %q", t, name)
	}
	return v.Clone(), nil
}

// OpenBatch implements Party.
func (r *Replayer) OpenBatch(ctx context.Context, t int64) (*BatchOpening, error) {
	if t < r.first || t >= r.spec.Steps {
		return nil, fmt.Errorf("dispute: no step %d here", t)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	x, y, idx := r.batch(t)
	// The tree keeps no hash per sample: ProveBatch rehashes each block
	// of the batch once, at most one pass over the data per batch.
	proofs, err := r.tree.ProveBatch(idx)
	if err != nil {
		return nil, err
	}
	o := &BatchOpening{Samples: make([]OpenedSample, len(idx))}
	for b, i := range idx {
		o.Samples[b] = OpenedSample{Index: i, Label: y[b], Features: append([]uint8(nil), x[b]...), Proof: proofs[b]}
	}
	return o, nil
}
