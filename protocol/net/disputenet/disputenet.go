// Package disputenet plays the dispute game of protocol/core/dispute over the
// network: a party serves its answers (digests, claims, opened tensors,
// batches: an MLP's samples or a GPT's windows, each in its own dispute
// encoding) on wire.DisputeProtocol, and the referee talks to each party
// through a Remote that implements dispute.Party. Answers are checked by
// the referee exactly as local ones are; a party that does not answer
// loses by forfeit.
package disputenet

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/ref"
)

// ErrNoParty: the node plays no dispute for that job.
var ErrNoParty = errors.New("disputenet: no party for this job")

// Serve answers dispute queries on n with the party that parties returns
// for the query's job.
func Serve(n *p2p.Node, parties func(job spec.JobID) (dispute.Party, error)) {
	n.Handle(wire.DisputeProtocol, func(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		q := m.(*wire.DisputeQuery)
		party, err := parties(spec.JobID(e.Job))
		if err != nil {
			return r.Reply(&wire.DisputeAnswer{Error: err.Error()})
		}
		payload, err := answer(ctx, party, q)
		if err != nil {
			return r.Reply(&wire.DisputeAnswer{Error: err.Error()})
		}
		return r.Reply(&wire.DisputeAnswer{Payload: payload})
	}, wire.TypeDisputeQuery)
}

func answer(ctx context.Context, p dispute.Party, q *wire.DisputeQuery) ([]byte, error) {
	switch q.Kind {
	case wire.DisputeDigestAt:
		d, err := p.DigestAt(ctx, q.Step)
		return d[:], err
	case wire.DisputeClaim:
		c, err := p.Claim(ctx, q.Step)
		if err != nil {
			return nil, err
		}
		return c.MarshalBinary()
	case wire.DisputeOpen:
		t, err := p.Open(ctx, q.Step, q.Name)
		if err != nil {
			return nil, err
		}
		return dispute.MarshalTensor(t)
	case wire.DisputeOpenBatch:
		o, err := p.OpenBatch(ctx, q.Step)
		if err != nil {
			return nil, err
		}
		return o.MarshalBinary()
	}
	return nil, fmt.Errorf("unknown query %v", q.Kind)
}

// Remote is a party on another node, as the referee sees it.
type Remote struct {
	Node *p2p.Node
	Peer peer.ID
	Job  spec.JobID
}

var _ dispute.Party = (*Remote)(nil)

func (r *Remote) ask(ctx context.Context, q *wire.DisputeQuery) ([]byte, error) {
	m, err := r.Node.Request(ctx, r.Peer, wire.DisputeProtocol, r.Job, q, wire.TypeDisputeAnswer)
	if err != nil {
		return nil, err
	}
	a := m.(*wire.DisputeAnswer)
	if a.Error != "" {
		return nil, fmt.Errorf("%w: %s", p2p.ErrRemote, a.Error)
	}
	return a.Payload, nil
}

// DigestAt implements dispute.Party.
func (r *Remote) DigestAt(ctx context.Context, step int64) (merkle.Digest, error) {
	b, err := r.ask(ctx, &wire.DisputeQuery{Kind: wire.DisputeDigestAt, Step: step})
	if err != nil {
		return merkle.Digest{}, err
	}
	if len(b) != len(merkle.Digest{}) {
		return merkle.Digest{}, fmt.Errorf("disputenet: digest of %d bytes", len(b))
	}
	return merkle.Digest(b), nil
}

// Claim implements dispute.Party.
func (r *Remote) Claim(ctx context.Context, t int64) (dispute.Claim, error) {
	b, err := r.ask(ctx, &wire.DisputeQuery{Kind: wire.DisputeClaim, Step: t})
	if err != nil {
		return dispute.Claim{}, err
	}
	var c dispute.Claim
	return c, c.UnmarshalBinary(b)
}

// Open implements dispute.Party.
func (r *Remote) Open(ctx context.Context, t int64, name string) (ref.Tensor, error) {
	b, err := r.ask(ctx, &wire.DisputeQuery{Kind: wire.DisputeOpen, Step: t, Name: name})
	if err != nil {
		return ref.Tensor{}, err
	}
	return dispute.UnmarshalTensor(b)
}

// OpenBatch implements dispute.Party.
func (r *Remote) OpenBatch(ctx context.Context, t int64) (*dispute.BatchOpening, error) {
	b, err := r.ask(ctx, &wire.DisputeQuery{Kind: wire.DisputeOpenBatch, Step: t})
	if err != nil {
		return nil, err
	}
	o := &dispute.BatchOpening{}
	return o, o.UnmarshalBinary(b)
}
