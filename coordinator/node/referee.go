package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
)

// refereeReplay referees a failed replay audit: bisection with both
// parties over the network, then one operator recomputed. An accusation
// that names no segment, or that the verifier does not back with its own
// digest, loses; an error is the referee's own (its context ended).
func (c *Node) refereeReplay(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.TraceCommit, solver, verifier peer.ID, r *wire.AuditReport) (bool, string, error) {
	// The disputed segment runs from the initial state, which both parties
	// agree on, to the first trace entry after the first bad step the
	// verifier found; bisection finds the first step they disagree on
	// (the audit's bad step may lie after it, when the verifier replayed
	// from one of the solver's own checkpoints).
	var seg dispute.Segment
	if len(t.Entries) > 0 && t.Entries[0].Step == 0 {
		seg.Start, seg.StartDigest = 0, t.Entries[0].Digest
	}
	for _, e := range t.Entries {
		if e.Step > r.FirstBadStep {
			seg.End, seg.SolverEnd = e.Step, e.Digest
			break
		}
	}
	if seg.End == 0 || r.FirstBadStep < 0 {
		return false, fmt.Sprintf("%v: first bad step %d is in no segment", ErrBadReport, r.FirstBadStep), nil
	}
	vp := &disputenet.Remote{Node: c.P2P, Peer: verifier, Job: id}
	sp := &disputenet.Remote{Node: c.P2P, Peer: solver, Job: id}
	vEnd, err := vp.DigestAt(ctx, seg.End)
	if err != nil {
		if ctx.Err() != nil {
			return false, "", ctx.Err()
		}
		return false, fmt.Sprintf("forfeit: the verifier did not give its digest after %d steps: %v", seg.End, err), nil
	}
	if vEnd == seg.SolverEnd {
		return false, fmt.Sprintf("the verifier agrees with the solver's digest after %d steps", seg.End), nil
	}
	seg.VerifierEnd = vEnd
	ref, err := dispute.NewReferee(s)
	if err != nil {
		return false, "", err
	}
	res, err := ref.Play(ctx, seg, sp, vp)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, dispute.ErrNoDispute) {
			return false, fmt.Sprintf("the accusation is no dispute: %v", err), nil
		}
		return false, "", err
	}
	c.log.Info("referee ruled", jobAttr(id), "verdict", res.Verdict.String(), "rounds", res.Cost.Rounds, "ops_run", res.Cost.OpsRun,
		"op_macs", res.Cost.OpWork, "step_macs", res.Cost.StepWork)
	return res.Verdict.Loser == dispute.LoserSolver, res.Verdict.String(), nil
}

// refereeZK referees a failed confidential audit without seeing any
// value: the challenge at the reported step is recomputed from the
// committed roots and the beacon, the solver is asked for that tile's
// proof, and the proof is checked (milliseconds). A valid proof means a
// false accusation; none, or an invalid one, means the solver cannot back
// its commitment.
func (c *Node) refereeZK(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.TraceCommit, beacon []byte, solver peer.ID, r *wire.AuditReport) (bool, string, error) {
	if c.cfg.Keys == nil {
		return false, "", ErrNoKeys
	}
	z, err := zkchallenge.ZKTraceOf(s, wire.ZKEntries(t.ZKEntries))
	if err != nil {
		return false, "", err
	}
	count, err := zkchallenge.Count(s)
	if err != nil {
		return false, "", err
	}
	chs, err := zkchallenge.Challenges(s, t.TraceRoot, z.Root(), beacon, count)
	if err != nil {
		return false, "", err
	}
	i := slices.IndexFunc(chs, func(ch zkchallenge.Challenge) bool { return ch.Step == r.FirstBadStep })
	if i < 0 {
		return false, fmt.Sprintf("step %d was not challenged", r.FirstBadStep), nil
	}
	ch := chs[i]
	// Again, in case the first beacon was lost: the solver must not lose a
	// dispute to a lost message.
	c.sendBeacon(ctx, id, solver, beacon)
	req := &wire.ProofRequest{Step: ch.Step, Layer: ch.Layer, Row: ch.Row, Col: ch.Col}
	m, err := c.P2P.Request(ctx, solver, wire.ProofProtocol, id, req, wire.TypeProof)
	solverLoses, why := true, ""
	switch {
	case err != nil:
		why = fmt.Sprintf("the solver did not answer for %v: %v", ch, err)
	case m.(*wire.Proof).Error != "":
		why = fmt.Sprintf("the solver could not prove %v: %s", ch, m.(*wire.Proof).Error)
	default:
		if err := prover.VerifyTile(c.cfg.Keys, s, z, ch, m.(*wire.Proof).Proof); err != nil {
			why = fmt.Sprintf("the solver's proof of %v is invalid: %v", ch, err)
		} else {
			solverLoses, why = false, fmt.Sprintf("the solver's proof of %v is valid", ch)
		}
	}
	c.log.Info("zk referee ruled", jobAttr(id), "solver_loses", solverLoses, "why", why)
	return solverLoses, why, nil
}
