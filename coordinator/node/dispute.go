package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// dispute plays out a failed audit the service has recorded as disputed:
// it asks the referee which party loses and slashes that party's bond. A
// cheating solver's job ends adjudicated_cheat; a falsely accusing
// verifier is slashed and the audit goes to another verifier. A referee
// that cannot be played (the node closing, the job's deadline, a fault of
// this node's) leaves the job disputed: the clock plays it again once both
// parties are registered, until the job expires.
func (c *Node) dispute(ctx context.Context, j *job, solver, verifier peer.ID, r *wire.AuditReport) {
	c.mu.Lock()
	s, t, beacon, deadline := j.spec, j.trace, j.beacon, j.deadline
	c.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var solverLoses bool
	var why string
	var err error
	if s.Audit.Confidential {
		solverLoses, why, err = c.refereeZK(ctx, j.id, s, t, beacon, solver, r)
	} else {
		solverLoses, why, err = c.refereeReplay(ctx, j.id, s, t, solver, verifier, r)
	}
	if err != nil {
		c.log.Error("dispute could not be played", jobAttr(j.id), "err", err)
		c.retryDispute(j, r, verifier)
		return
	}
	loser := report.LoserVerifier
	if solverLoses {
		loser = report.LoserSolver
	}
	ruling := report.Dispute{Verifier: verifier.String(), Solver: solver.String(), FirstBadStep: r.FirstBadStep, Loser: loser, Why: why}
	if solverLoses {
		if _, err := c.svc.SlashSolver(ctx, j.id.String()); err != nil {
			c.log.Error("slashing the solver", jobAttr(j.id), "err", err)
			c.retryDispute(j, r, verifier)
			return
		}
		c.mu.Lock()
		j.slashed = append(j.slashed, solver)
		c.mu.Unlock()
		c.logAudit(ctx, j.id, func(l *auditLog) { l.Disputes = append(l.Disputes, ruling) })
		c.log.Info("solver slashed: bounty to the verifier, the rest to the client", jobAttr(j.id), "solver", shortPeer(solver), "verifier", shortPeer(verifier), "why", why)
		c.finish(j.id, lifecycle.AdjudicatedCheat, VerdictFail, verifier, why)
		return
	}
	if _, err := c.svc.SlashVerifier(ctx, j.id.String()); err != nil {
		// SlashVerifier rules, then resumes the audit window: if only the
		// ruling applied, finish the second half.
		rec, jerr := c.svc.Job(ctx, j.id)
		if jerr != nil || rec.State != lifecycle.AdjudicatedFalseAccusation {
			c.log.Error("slashing the verifier", jobAttr(j.id), "err", err)
			c.retryDispute(j, r, verifier)
			return
		}
		if _, err := c.svc.ResumeAudit(ctx, j.id); err != nil {
			c.log.Error("resuming the audit", jobAttr(j.id), "err", err)
			c.retryDispute(j, r, verifier)
			return
		}
	}
	c.logAudit(ctx, j.id, func(l *auditLog) { l.Disputes = append(l.Disputes, ruling) })
	c.mu.Lock()
	j.slashed = append(j.slashed, verifier)
	j.auditor, j.disputed, j.busy, j.nextAssign = "", nil, false, time.Time{}
	c.mu.Unlock()
	c.forgetDispute(j.id)
	c.log.Info("verifier slashed for a false accusation: the audit goes to another", jobAttr(j.id), "verifier", shortPeer(verifier), "why", why)
	c.spawn(func(ctx context.Context) { c.assignAudit(ctx, j.id) })
}

// retryDispute leaves j disputed, to be played again after AuditTimeout.
func (c *Node) retryDispute(j *job, r *wire.AuditReport, verifier peer.ID) {
	c.mu.Lock()
	j.disputed, j.auditor, j.busy = r, verifier, false
	j.nextAssign = time.Now().Add(c.cfg.AuditTimeout)
	c.mu.Unlock()
}
