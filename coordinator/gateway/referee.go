package gateway

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// The dispute of a fraud verdict (SPEC.md §21.4). One verifier's word does
// not slash a solver: the coordinator is the referee, as in training
// disputes, and plays the inference dispute game (protocol/core/
// inferdispute) between the accused solver and the accusing verifier over
// DisputeProtocol (protocol/net/infer): each commits to the hashes of
// every tensor of its forward pass over the record's prompt + output, the
// referee finds the first operator their claims differ on and recomputes
// that one operator from inputs both agreed on. It needs no weights, only
// the model's configuration (from the spec it was published with) and
// its checkpoint's name — for a model of GPT-2 blocks (SPEC.md §22,
// imported and served) too: its operators are in the reference graph. The
// solver loses: its bond is slashed (the client refunded, the verifier
// paid a bounty) and it is banned from routing.
// The verifier loses: its verdict is refused, its bond slashed (a share to
// the accused solver) and it gets no more receipts to check. Both lose
// (both claims are off the spec): both are slashed, and neither is paid
// from the other's slash (the platform takes both). Each slash is once per
// request by its transfer ID.

// Events of the referee.
const (
	// EventVerdictRefused: the referee refuted a fraud verdict (Warn):
	// "verifier", "request", "position", "why",
	// "verifier_slashed_micro_usd".
	EventVerdictRefused = "inference verdict refused"
	// EventDisputeUnresolved: the referee could not judge a verdict (the
	// model's spec unknown, a store failure): nobody is slashed (Error):
	// "request", "verifier", "err".
	EventDisputeUnresolved = "inference dispute unresolved"
	// EventDisputePlayed: the referee decided a dispute (Info): "request",
	// "verdict", "op" (the operator recomputed, "" if none), "op_work",
	// "pass_work", "why".
	EventDisputePlayed = "inference dispute played"
)

// ruling is how the referee decided a verdict.
type ruling struct {
	loser dispute.Loser
	// verdict and why say it in words; op is the operator recomputed by
	// the game ("" if none or no game), with its work and the pass's.
	verdict, why     string
	op               string
	opWork, passWork int64
}

// refereeModel returns what the game needs of the published model m: its
// configuration, from the spec it was published with (which must hash to
// its job), its checkpoint's job and step, and its digest.
func (g *Gateway) refereeModel(m *Model) (inferdispute.Model, error) {
	d, err := infer.ParseDigest(m.Digest)
	if err != nil {
		return inferdispute.Model{}, err
	}
	job, err := spec.ParseJobID(m.Job)
	if err != nil {
		return inferdispute.Model{}, fmt.Errorf("model %s: %w", m.ID, err)
	}
	raw, ok, err := g.cat.spec(m.Job)
	if err != nil {
		return inferdispute.Model{}, err
	}
	if !ok {
		return inferdispute.Model{}, fmt.Errorf("model %s was published without its spec: the referee cannot know its configuration", m.ID)
	}
	s, err := spec.Read(bytes.NewReader(raw))
	if err != nil {
		return inferdispute.Model{}, fmt.Errorf("model %s's spec: %w", m.ID, err)
	}
	if id, err := s.ID(); err != nil || id != job {
		return inferdispute.Model{}, fmt.Errorf("model %s's spec is not job %s's", m.ID, m.Job)
	}
	c, err := s.GPT()
	if err != nil {
		return inferdispute.Model{}, fmt.Errorf("model %s's spec: %w", m.ID, err)
	}
	return inferdispute.Model{Config: c, Job: job, Step: m.Step, Digest: d}, nil
}

// judge decides verifier v's verdict vd on record rec of solver by the
// dispute game, or says why it could not.
func (g *Gateway) judge(ctx context.Context, m *Model, rec *inference.Record, solver, v peer.ID, vd *infer.Verdict) (*ruling, error) {
	raw := rec.Marshal()
	req, out, rc, err := inference.DecodeRecord(raw)
	if err != nil {
		return nil, err
	}
	im, err := g.refereeModel(m)
	if err != nil {
		return nil, err
	}
	cs := inferdispute.Case{Request: req, Output: out, Receipt: rc}
	res, err := inferdispute.NewReferee().Play(ctx, im, cs,
		&infer.DisputeParty{Host: g.h, Peer: solver, Record: raw},
		&infer.DisputeParty{Host: g.h, Peer: v, Record: raw})
	if err != nil {
		return nil, err
	}
	r := &ruling{loser: res.Verdict.Loser, verdict: res.Verdict.String(), why: res.Verdict.String(),
		op: res.Cost.Op, opWork: res.Cost.OpWork, passWork: res.Cost.PassWork}
	if res.Forfeit != "" {
		r.why += ": " + res.Forfeit
	} else if r.op != "" {
		r.why += fmt.Sprintf(": operator %s recomputed (work %d of the pass's %d)", r.op, r.opWork, r.passWork)
	}
	return r, nil
}

// dispute settles a fraud verdict of verifier v on the request solver
// answered for client and returns who lost (0: unresolved); it gives up
// when parent ends (Close).
func (g *Gateway) dispute(parent context.Context, m *Model, req *inference.Request, rec *inference.Record, solver, v peer.ID, client string, costMicroUSD int64, vd *infer.Verdict) dispute.Loser {
	s := &g.ver
	ctx, cancel := context.WithTimeout(parent, 2*time.Minute)
	defer cancel()
	s.mu.Lock()
	s.stats.Disputes++
	s.mu.Unlock()
	party, vparty := join.PartyID(wire.RoleSolver, solver), join.PartyID(wire.RoleVerifier, v)
	res, err := g.judge(ctx, m, rec, solver, v, vd)
	if err != nil && parent.Err() != nil {
		return 0 // stopped (Close): the next run plays it again
	}
	if err != nil {
		g.log.Error(EventDisputeUnresolved, "request", req.ID, "verifier", vparty, "err", err.Error())
		s.mu.Lock()
		s.stats.Unresolved++
		s.mu.Unlock()
		return 0
	}
	why := res.why
	g.log.Info(EventDisputePlayed, "request", req.ID, "verdict", res.verdict, "op", res.op, "op_work", res.opWork, "pass_work", res.passWork, "why", why)
	loser := res.loser
	// When both lose, neither is paid from the other's slash: the
	// platform takes both.
	bountyTo, shareTo := vparty, party
	if loser == dispute.LoserBoth {
		bountyTo, shareTo = "", ""
	}
	if loser == dispute.LoserSolver || loser == dispute.LoserBoth {
		g.router.Ban(solver)
		g.ban(party, req.ID, why)
		sl, err := g.svc.SlashInference(ctx, req.ID, party, client, bountyTo, costMicroUSD)
		if err != nil {
			g.log.Error(EventSettleFailed, "request", req.ID, "err", err.Error())
		}
		g.log.Warn(EventSlashed, "solver", party, "request", req.ID, "slashed_micro_usd", sl.SlashedMicroUSD, "refund_micro_usd", sl.RefundMicroUSD, "why", why)
		s.mu.Lock()
		s.stats.Frauds++
		s.stats.Slashed += sl.SlashedMicroUSD
		s.stats.Refunded += sl.RefundMicroUSD
		s.mu.Unlock()
	}
	if loser == dispute.LoserVerifier || loser == dispute.LoserBoth {
		s.verifiers.Ban(v)
		g.ban(vparty, req.ID, why)
		sl, err := g.svc.SlashFalseVerdict(ctx, req.ID, vparty, shareTo)
		if err != nil {
			g.log.Error(EventSettleFailed, "request", req.ID, "err", err.Error())
		}
		g.log.Warn(EventVerdictRefused, "verifier", vparty, "request", req.ID, "position", vd.Position, "why", why, "verifier_slashed_micro_usd", sl.SlashedMicroUSD)
		s.mu.Lock()
		s.stats.Refused++
		s.stats.VerifierSlashed += sl.SlashedMicroUSD
		s.mu.Unlock()
	}
	return loser
}

// VerifiersOf reports how many verifiers check model now (a banned one
// no longer counts).
func (g *Gateway) VerifiersOf(model merkle.Digest) int { return g.ver.verifiers.Serving(model) }
