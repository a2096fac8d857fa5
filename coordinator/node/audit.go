package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
)

// rank orders candidate verifiers for job id's audit by
// SHA-256(beacon ‖ job ‖ party): the beacon is drawn after the trace is
// committed, so no verifier can choose a key that puts it first.
func rank(beacon []byte, id spec.JobID, cands []*Peer) {
	key := func(p *Peer) []byte {
		h := sha256.New()
		h.Write(beacon)
		h.Write(id[:])
		h.Write([]byte(p.Party))
		return h.Sum(nil)
	}
	keys := make(map[peer.ID][]byte, len(cands))
	for _, p := range cands {
		keys[p.ID] = key(p)
	}
	sort.Slice(cands, func(a, b int) bool { return bytes.Compare(keys[cands[a].ID], keys[cands[b].ID]) < 0 })
}

// auditTimeout is how long a verifier has to report on j.
func (c *Node) auditTimeout(j *job) time.Duration {
	timeout := c.cfg.AuditTimeout
	if j.spec.Audit.Confidential {
		// Each challenged tile is a proof of seconds on the solver.
		if n, err := zkchallenge.Count(j.spec); err == nil {
			timeout += time.Duration(n) * proofAllowance
		}
	}
	return timeout
}

// assignAudit gives the job's audit to the first verifier, in the beacon's
// order, among the enrolled verifiers that have not had it and can lock
// the bond (service.AssignAudit); the previous auditor, silent past its
// deadline, loses it (and its bond is released). With no such verifier
// the job waits: a verifier that joins later, or the next try, takes it.
func (c *Node) assignAudit(ctx context.Context, id spec.JobID) {
	c.mu.Lock()
	j := c.jobs[id]
	now := time.Now()
	if j == nil || j.outcome != nil || j.trace == nil || j.busy || j.disputed != nil ||
		(j.auditor != "" && now.Before(j.auditDeadline)) || now.Before(j.nextAssign) {
		c.mu.Unlock()
		return
	}
	j.busy = true
	prev := j.auditor
	var cands []*Peer
	for _, p := range c.peers {
		if p.Role == wire.RoleVerifier && p.Enrolled && !j.tried[p.ID] {
			q := *p
			cands = append(cands, &q)
		}
	}
	rank(j.beacon, id, cands)
	deadline := j.deadline
	c.mu.Unlock()
	// Requests for the job end by its deadline, so that expiry is never
	// held up.
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if prev != "" {
		c.log.Warn("verifier silent: reassigning the audit", jobAttr(id), "peer", shortPeer(prev))
	}
	for _, v := range cands {
		if _, err := c.svc.AssignAudit(ctx, id, v.Party); err != nil {
			if errors.Is(err, service.ErrIllegalState) || errors.Is(err, service.ErrNotFound) || ctx.Err() != nil {
				c.log.Warn("audit not assigned", jobAttr(id), "err", err)
				c.unbusy(j)
				return
			}
			c.log.Info("verifier passed over", jobAttr(id), "peer", shortPeer(v.ID), "party", v.Party, "err", err)
			continue
		}
		c.mu.Lock()
		j.auditor, j.tried[v.ID] = v.ID, true
		j.auditDeadline = time.Now().Add(c.auditTimeout(j))
		task := &wire.AuditTask{Solver: j.solver, TraceRoot: j.trace.TraceRoot, Beacon: j.beacon, SpecJSON: j.specJSON, Entries: j.trace.Entries,
			ZKEntries: j.trace.ZKEntries}
		for _, cp := range j.checkpoints {
			for _, h := range cp.holders {
				if !containsPeer(task.Providers, h) {
					task.Providers = append(task.Providers, h)
				}
			}
		}
		task.ProviderAddrs = c.addrsLocked(append([]peer.ID{j.solver}, task.Providers...))
		// The job is free as soon as the service holds the assignment:
		// the verifier may answer before the task's acknowledgement.
		j.busy = false
		c.mu.Unlock()
		if !j.spec.Audit.Confidential {
			// The holders serve the job's checkpoints to this verifier
			// alone; a confidential job's audit fetches none.
			var err error
			if task.Grant, err = exchange.IssueGrant(c.P2P, id, v.ID, exchange.GrantTTL); err != nil {
				c.log.Warn("granting the verifier", jobAttr(id), "err", err)
			}
		}
		if _, err := c.P2P.Request(ctx, v.ID, wire.AuditProtocol, id, task, wire.TypeAck); err != nil {
			// As if silent: the next tick gives the audit to the next
			// verifier, which releases this one's bond.
			c.log.Warn("audit task not delivered", jobAttr(id), "peer", shortPeer(v.ID), "err", err)
			c.mu.Lock()
			if j.auditor == v.ID {
				j.auditDeadline = time.Now()
			}
			c.mu.Unlock()
			return
		}
		c.log.Info("audit assigned", jobAttr(id), "peer", shortPeer(v.ID), "party", v.Party)
		return
	}
	c.mu.Lock()
	j.nextAssign = time.Now().Add(c.cfg.AuditTimeout)
	j.busy = false
	c.mu.Unlock()
	c.log.Info("audit waits for a bonded verifier", jobAttr(id))
}

func (c *Node) report(ctx context.Context, e *wire.Envelope, r *wire.AuditReport) error {
	c.mu.Lock()
	j, err := c.jobOf(e)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if j.outcome != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: job %s", ErrJobOver, short(j.id))
	}
	if j.auditor == "" || j.auditor != e.Sender || j.disputed != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: audit report for job %s from a peer not auditing it", ErrNotYours, short(j.id))
	}
	if j.busy {
		c.mu.Unlock()
		return fmt.Errorf("%w: job %s", ErrBusy, short(j.id))
	}
	j.busy = true
	solver, sp, tr, beacon := j.solver, j.spec, j.trace, j.beacon
	c.mu.Unlock()
	if err := checkFindings(e.Sender, r, sp, tr, beacon); err != nil {
		c.unbusy(j)
		return fmt.Errorf("audit report for job %s: %w", short(j.id), err)
	}
	vparty := PartyID(wire.RoleVerifier, e.Sender)
	c.logAudit(ctx, j.id, func(l *auditLog) {
		l.Audits = append(l.Audits, report.Audit{Verifier: report.Party{PeerID: e.Sender.String(), Party: vparty}, ReportedAt: time.Now().UTC(),
			Signed: *r.Findings})
	})
	if r.Pass {
		what := "steps replayed"
		if j.spec.Audit.Confidential {
			what = "challenged tiles proven in zero knowledge"
		}
		c.log.Info("audit passed", jobAttr(j.id), "peer", shortPeer(e.Sender), "checked", r.StepsChecked, "what", what, "confidence", float64(r.ConfidencePPM)/1e6)
		if _, err := c.svc.Settle(ctx, j.id.String(), []service.VerifierPay{{VerifierID: vparty, Audits: 1}}); err != nil {
			c.unbusy(j)
			return err
		}
		c.log.Info("job settled: solver paid, verifier paid", jobAttr(j.id))
		// Whoever waits for the job hears of its end once the verifier has
		// its answer (control announces it after replying).
		c.end(j.id, lifecycle.Settled, VerdictPass, e.Sender, "")
		return nil
	}
	c.log.Info("audit failed: dispute opened", jobAttr(j.id), "peer", shortPeer(e.Sender), "first_bad_step", r.FirstBadStep, "reason", r.Reason)
	if _, err := c.svc.Dispute(ctx, j.id.String(), vparty, PartyID(wire.RoleSolver, solver)); err != nil {
		c.unbusy(j)
		return err
	}
	if err := c.saveDispute(j.id, r, e.Sender); err != nil {
		c.log.Warn("storing the dispute", jobAttr(j.id), "err", err)
	}
	c.spawn(func(ctx context.Context) { c.dispute(ctx, j, solver, e.Sender, r) })
	return nil
}

// unbusy marks j free for the clock again.
func (c *Node) unbusy(j *job) {
	c.mu.Lock()
	j.busy = false
	c.mu.Unlock()
}

// finish records the job's end and tells whoever waits for it; it never
// blocks.
func (c *Node) finish(id spec.JobID, st lifecycle.State, v Verdict, verifier peer.ID, reason string) {
	c.end(id, st, v, verifier, reason)
	c.announceEnds()
}

// announceEnds wakes whoever waits for a job's end (AwaitOutcome).
func (c *Node) announceEnds() {
	c.mu.Lock()
	close(c.finished)
	c.finished = make(chan struct{})
	c.mu.Unlock()
}

// end records the job's end; announceEnds tells the waiters.
func (c *Node) end(id spec.JobID, st lifecycle.State, v Verdict, verifier peer.ID, reason string) {
	c.mu.Lock()
	j := c.jobs[id]
	if j == nil || j.outcome != nil {
		c.mu.Unlock()
		return
	}
	out := &Outcome{Job: id, State: st, Solvers: append([]peer.ID(nil), j.solvers...), Verdict: v, Verifier: verifier,
		Slashed: append([]peer.ID(nil), j.slashed...), Reason: reason, Ended: time.Now()}
	j.outcome, j.busy, j.disputed = out, false, nil
	// The report is stored before anyone can see the outcome, so that a
	// client told the job is over can fetch it (a few milliseconds of
	// service reads under the node's lock, once per job).
	c.issueReport(c.ctx, &ending{spec: j.spec, trace: j.trace, beacon: j.beacon, solvers: append([]peer.ID(nil), j.solvers...),
		slashed: append([]peer.ID(nil), j.slashed...), out: *out})
	if p := c.peers[j.solver]; p != nil && j.trace == nil {
		p.Busy = false // its job ended under it
	}
	// What only a running job needs goes.
	j.checkpoints, j.trace = nil, nil
	c.mu.Unlock()
	c.forget(id)
	c.log.Info("job ended", jobAttr(id), "state", st.String(), "verdict", v.String(), "reason", reason)
}

// sendBeacon gives a confidential job's solver its audit beacon.
func (c *Node) sendBeacon(ctx context.Context, id spec.JobID, solver peer.ID, beacon []byte) {
	if _, err := c.P2P.Request(ctx, solver, wire.AssignProtocol, id, &wire.Beacon{Beacon: beacon}, wire.TypeAck); err != nil {
		c.log.Warn("sending the audit beacon", jobAttr(id), "peer", shortPeer(solver), "err", err)
	}
}

// proofAllowance is the audit time allowed per challenged tile of a
// confidential job (a proof takes ~1.5 s on two cores).
const proofAllowance = 10 * time.Second
