package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/spec"
)

// dispute plays out a failed audit: it records the dispute, asks the
// referee which party loses, slashes that party's bond and finishes the
// job. referee reports whether the solver loses and why; an error leaves
// the job in dispute-error.
func (c *Node) dispute(id spec.JobID, solver, verifier peer.ID, vparty string, referee func(context.Context) (solverLoses bool, why string, err error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &Outcome{Job: id.String(), Verdict: "fail", Verifier: verifier.String(), Solvers: []string{solver.String()}}
	fail := func(err error) {
		out.State, out.Reason = "dispute-error", err.Error()
		c.event("job %s: dispute could not be played: %v", short(id), err)
		c.finish(id, out)
	}
	c.mu.Lock()
	sparty := ""
	if p := c.peers[solver]; p != nil {
		sparty = p.Party
	}
	c.mu.Unlock()
	if _, err := c.svc.Dispute(ctx, id.String(), vparty, sparty); err != nil {
		fail(err)
		return
	}
	solverLoses, why, err := referee(ctx)
	if err != nil {
		fail(err)
		return
	}
	if solverLoses {
		if _, err := c.svc.SlashSolver(ctx, id.String()); err != nil {
			fail(err)
			return
		}
		out.State, out.Slashed = "slashed", solver.String()
		c.event("job %s: solver %s SLASHED; bounty to verifier %s, the rest to the client", short(id), solver.ShortString(), verifier.ShortString())
	} else {
		if _, err := c.svc.SlashVerifier(ctx, id.String()); err != nil {
			fail(err)
			return
		}
		out.State, out.Slashed = "verifier-slashed", verifier.String()
		c.event("job %s: verifier %s slashed for a false accusation", short(id), verifier.ShortString())
	}
	out.Reason = why
	c.finish(id, out)
}
