package inferdispute

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

var _ Party = (*Replayer)(nil)

// Replayer is a Party that computes its answers: the forward pass of the
// case's graph over prompt + output with the model it holds, operator by
// operator (spec/gptref's reference), on the first query. It needs
// nothing kept from the generation: the request and the output determine
// the pass. With the published model it is the honest solver and the
// honest verifier alike.
type Replayer struct {
	g       *Graph
	st      *gpt.State
	text    []byte
	tamper  func(g *Graph, op int, out map[string]opgraph.Tensor)
	moments []merkle.Digest

	once   sync.Once
	err    error
	values []opgraph.Tensor
	claim  Claim
}

// ReplayerOption configures a Replayer.
type ReplayerOption func(*Replayer)

// WithTamper calls f with each operator's outputs as they are computed,
// before later operators read them: a dishonest party, for tests.
func WithTamper(f func(g *Graph, op int, out map[string]opgraph.Tensor)) ReplayerOption {
	return func(r *Replayer) { r.tamper = f }
}

// WithMoments gives the claim's Moments (MomentLeaves of the state),
// computed once per model by a party that answers many disputes.
func WithMoments(leaves []merkle.Digest) ReplayerOption {
	return func(r *Replayer) { r.moments = leaves }
}

// NewReplayer returns the party that answers for case cs with model c,
// whose checkpoint state is st (weights and moments, st's moments give
// the claim's Moments).
func NewReplayer(c gpt.Config, st *gpt.State, cs Case, opts ...ReplayerOption) (*Replayer, error) {
	if cs.Request == nil {
		return nil, fmt.Errorf("%w: no request", ErrNoDispute)
	}
	g, err := NewGraph(c, cs.Request, cs.Output)
	if err != nil {
		return nil, err
	}
	r := &Replayer{g: g, st: st, text: cs.text()}
	for _, o := range opts {
		o(r)
	}
	if r.moments == nil {
		if r.moments, err = MomentLeaves(c, st); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// MomentLeaves returns the state-tree leaves of st's moments, P.m and P.v
// per parameter of c in order: what a Claim's Moments hold.
func MomentLeaves(c gpt.Config, st *gpt.State) ([]merkle.Digest, error) {
	ps := c.Params()
	if st == nil || len(st.M) != len(ps) || len(st.V) != len(ps) {
		return nil, fmt.Errorf("inferdispute: the checkpoint has the wrong moments")
	}
	out := make([]merkle.Digest, 0, 2*len(ps))
	for i, p := range ps {
		shape := []int{p.Rows, p.In}
		m := make([]int64, len(st.M[i]))
		for k, v := range st.M[i] {
			m[k] = int64(v)
		}
		dm, err := dispute.HashTensor(opgraph.TensorInfo{Name: p.Name + ".m", StateName: p.Name + ".m", Kind: opgraph.StateIn, Shape: shape, Min: math.MinInt32, Max: math.MaxInt32},
			opgraph.Tensor{Shape: shape, Data: m})
		if err != nil {
			return nil, err
		}
		dv, err := dispute.HashTensor(opgraph.TensorInfo{Name: p.Name + ".v", StateName: p.Name + ".v", Kind: opgraph.StateIn, Shape: shape, Min: 0, Max: gpt.MaxVar},
			opgraph.Tensor{Shape: shape, Data: st.V[i]})
		if err != nil {
			return nil, err
		}
		out = append(out, dm, dv)
	}
	return out, nil
}

// compute runs the pass once.
func (r *Replayer) compute() error {
	r.once.Do(func() {
		var after func(int, map[string]opgraph.Tensor)
		if r.tamper != nil {
			after = func(op int, out map[string]opgraph.Tensor) { r.tamper(r.g, op, out) }
		}
		r.values, r.err = r.g.Forward(r.st, r.text, after)
		if r.err != nil {
			return
		}
		var h []merkle.Digest
		if h, r.err = r.g.claimOf(r.values); r.err == nil {
			r.claim = Claim{Hashes: h, Moments: r.moments}
		}
	})
	return r.err
}

// Claim implements Party.
func (r *Replayer) Claim(ctx context.Context) (Claim, error) {
	if err := r.compute(); err != nil {
		return Claim{}, err
	}
	return r.claim.clone(), nil
}

// Open implements Party.
func (r *Replayer) Open(ctx context.Context, name string) (opgraph.Tensor, error) {
	if err := r.compute(); err != nil {
		return opgraph.Tensor{}, err
	}
	i := r.g.index(name)
	if i < 0 {
		return opgraph.Tensor{}, fmt.Errorf("inferdispute: the forward pass has no tensor %q", name)
	}
	return r.values[i].Clone(), nil
}

// Graph returns the dispute's graph.
func (r *Replayer) Graph() *Graph { return r.g }
