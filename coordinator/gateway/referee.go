package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// The dispute of a fraud verdict (SPEC.md §21.4). One verifier's word does
// not slash a solver: the coordinator is the referee, as in training
// disputes. The verdict names the output position it blames; the referee
// re-runs that single teacher-forced position (inference.Referee: the
// claims that need no model, then one row of logits, re-sampled), or the
// whole pass when the verdict blames no single byte (the position root).
// Confirmed: the solver's bond is slashed (the client refunded, the
// verifier paid a bounty) and it is banned from routing. Refuted: the
// verdict is refused with the referee's reason, the verifier's bond is
// slashed (a share to the accused solver) and it gets no more receipts
// to check. Both slashes are once per request by their transfer IDs.
// The referee gets the model's weights like any peer (weights.go), from
// the peers announcing it, checked against the digest, and keeps them.

// Events of the referee.
const (
	// EventVerdictRefused: the referee refuted a fraud verdict (Warn):
	// "verifier", "request", "position", "why",
	// "verifier_slashed_micro_usd".
	EventVerdictRefused = "inference verdict refused"
	// EventDisputeUnresolved: the referee could not judge a verdict (no
	// peer holds the model, a store failure): nobody is slashed (Error):
	// "request", "verifier", "err".
	EventDisputeUnresolved = "inference dispute unresolved"
)

// referee holds the coordinator's node and the models it has fetched.
type referee struct {
	node *p2p.Node
	mu   sync.Mutex // one judgement at a time: a Generator is not concurrent
	gens map[merkle.Digest]*gpt.Generator
}

// generator returns the model m's generator, fetching its weights from
// the peers announcing it the first time. Called with r.mu held.
func (g *Gateway) refereeGenerator(ctx context.Context, m *Model, d merkle.Digest) (*gpt.Generator, error) {
	r := &g.ref
	if gen := r.gens[d]; gen != nil {
		return gen, nil
	}
	if r.node == nil {
		return nil, errors.New("the referee has no libp2p node to fetch the model with")
	}
	o, err := g.weightsOffer(r.node, r.node.ID(), m.ID)
	if err != nil {
		return nil, fmt.Errorf("the referee's copy of model %s: %w", m.ID, err)
	}
	f, err := infer.FetchOffered(ctx, r.node, o, time.Now(), g.log)
	if err != nil {
		return nil, fmt.Errorf("the referee's copy of model %s: %w", m.ID, err)
	}
	gen, err := gpt.NewGenerator(f.Model.Config, f.Model.State, kernel.Best(), 2)
	if err != nil {
		return nil, err
	}
	if r.gens == nil {
		r.gens = map[merkle.Digest]*gpt.Generator{}
	}
	r.gens[d] = gen
	return gen, nil
}

// judge plays the referee for verdict vd on record rec: ErrFraud
// (confirmed), nil (refuted), or why it could not judge; pos is the
// position re-run (−1: the whole pass, also for a verdict blaming a
// position the output does not have).
func (g *Gateway) judge(ctx context.Context, m *Model, rec *inference.Record, vd *infer.Verdict) (pos int, err error) {
	req, out, rc, err := inference.DecodeRecord(rec.Marshal())
	if err != nil {
		return -1, err
	}
	pos = vd.Position
	if pos < 0 || pos >= len(out) {
		pos = -1
	}
	g.ref.mu.Lock()
	defer g.ref.mu.Unlock()
	gen, err := g.refereeGenerator(ctx, m, rc.Model)
	if err != nil {
		return pos, err
	}
	err = inference.Referee(gen, rc.Model, req, out, rc, pos)
	if err != nil && !errors.Is(err, inference.ErrFraud) {
		return pos, fmt.Errorf("the record cannot be judged: %w", err)
	}
	return pos, err
}

// dispute settles a fraud verdict of verifier v on the request solver
// answered for client.
func (g *Gateway) dispute(m *Model, req *inference.Request, rec *inference.Record, solver, v peer.ID, client string, costMicroUSD int64, vd *infer.Verdict) {
	s := &g.ver
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.mu.Lock()
	s.stats.Disputes++
	s.mu.Unlock()
	party, vparty := join.PartyID(wire.RoleSolver, solver), join.PartyID(wire.RoleVerifier, v)
	pos, ruling := g.judge(ctx, m, rec, vd)
	switch {
	case errors.Is(ruling, inference.ErrFraud):
		g.router.Ban(solver)
		sl, err := g.svc.SlashInference(ctx, req.ID, party, client, vparty, costMicroUSD)
		if err != nil {
			g.log.Error(EventSettleFailed, "request", req.ID, "err", err.Error())
		}
		g.log.Warn(EventSlashed, "solver", party, "request", req.ID, "slashed_micro_usd", sl.SlashedMicroUSD, "refund_micro_usd", sl.RefundMicroUSD, "why", ruling.Error())
		s.mu.Lock()
		s.stats.Frauds++
		s.stats.Slashed += sl.SlashedMicroUSD
		s.stats.Refunded += sl.RefundMicroUSD
		s.slashed[party] = true
		s.mu.Unlock()
	case ruling == nil:
		s.verifiers.Ban(v)
		sl, err := g.svc.SlashFalseVerdict(ctx, req.ID, vparty, party)
		if err != nil {
			g.log.Error(EventSettleFailed, "request", req.ID, "err", err.Error())
		}
		why := "the referee's full teacher-forced pass matches the receipt"
		if pos >= 0 {
			why = fmt.Sprintf("the referee re-ran position %d: the model samples the byte the output has there", pos)
		}
		g.log.Warn(EventVerdictRefused, "verifier", vparty, "request", req.ID, "position", vd.Position, "why", why, "verifier_slashed_micro_usd", sl.SlashedMicroUSD)
		s.mu.Lock()
		s.stats.Refused++
		s.stats.VerifierSlashed += sl.SlashedMicroUSD
		s.slashed[vparty] = true
		s.mu.Unlock()
	default:
		g.log.Error(EventDisputeUnresolved, "request", req.ID, "verifier", vparty, "err", ruling.Error())
		s.mu.Lock()
		s.stats.Unresolved++
		s.mu.Unlock()
	}
}

// VerifiersOf reports how many verifiers check model now (a banned one
// no longer counts).
func (g *Gateway) VerifiersOf(model merkle.Digest) int { return g.ver.verifiers.Serving(model) }
