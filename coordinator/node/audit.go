package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
)

// assignAudit gives the job's audit to a verifier that has not had it,
// and reassigns it if the verifier stays silent.
func (c *Node) assignAudit(id spec.JobID) {
	c.mu.Lock()
	j := c.jobs[id]
	if j == nil || j.outcome != nil {
		c.mu.Unlock()
		return
	}
	var cands []*Peer
	for _, p := range c.peers {
		if p.Role == wire.RoleVerifier && !j.tried[p.ID] {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		c.mu.Unlock()
		c.event("job %s: no verifier left to audit it", short(id))
		return
	}
	// The least loaded verifier (ties by party ID).
	sort.Slice(cands, func(a, b int) bool {
		if cands[a].audits != cands[b].audits {
			return cands[a].audits < cands[b].audits
		}
		return cands[a].Party < cands[b].Party
	})
	cands[0].audits++
	v := cands[0].ID
	j.tried[v], j.auditor = true, v
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
	if !j.spec.Audit.Confidential {
		// The holders serve the job's checkpoints to this verifier alone;
		// a confidential job's audit fetches none.
		var err error
		if task.Grant, err = exchange.IssueGrant(c.P2P, id, v, exchange.GrantTTL); err != nil {
			c.event("job %s: granting the verifier: %v", short(id), err)
		}
	}
	if j.auditTimer != nil {
		j.auditTimer.Stop()
	}
	timeout := c.cfg.AuditTimeout
	if j.spec.Audit.Confidential {
		// Each challenged tile is a proof of seconds on the solver.
		if n, err := zkchallenge.Count(j.spec); err == nil {
			timeout += time.Duration(n) * proofAllowance
		}
	}
	j.auditTimer = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		silent := j.auditor == v && j.outcome == nil
		c.mu.Unlock()
		if silent {
			c.event("verifier %s stayed silent on job %s: reassigning the audit", v.ShortString(), short(id))
			c.assignAudit(id)
		}
	})
	c.mu.Unlock()
	if _, err := c.P2P.Request(context.Background(), v, wire.AuditProtocol, id, task, wire.TypeAck); err != nil {
		c.event("job %s: audit task to %s failed: %v", short(id), v.ShortString(), err)
		c.assignAudit(id)
		return
	}
	c.event("job %s: audit assigned to verifier %s", short(id), v.ShortString())
}

func (c *Node) report(e *wire.Envelope, r *wire.AuditReport) error {
	c.mu.Lock()
	j, err := c.jobOf(e)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if j.auditor != e.Sender || j.outcome != nil {
		c.mu.Unlock()
		return fmt.Errorf("audit report for job %s from a peer not auditing it", short(j.id))
	}
	if j.auditTimer != nil {
		j.auditTimer.Stop()
	}
	verifier := c.peers[e.Sender]
	solver := j.solver
	spc := j.spec
	tr := j.trace
	beacon := j.beacon
	c.mu.Unlock()
	if verifier == nil {
		return fmt.Errorf("unknown verifier")
	}
	ctx := context.Background()
	id := j.id.String()
	raw, _ := json.Marshal(map[string]any{"pass": r.Pass, "steps_checked": r.StepsChecked, "first_bad_step": r.FirstBadStep,
		"confidence_ppm": r.ConfidencePPM, "reason": r.Reason, "verifier": e.Sender.String()})
	if err := c.svc.SetAudit(ctx, id, raw); err != nil {
		c.event("job %s: storing the audit: %v", short(j.id), err)
	}
	out := &Outcome{Job: id, Verifier: e.Sender.String()}
	for _, s := range j.solvers {
		out.Solvers = append(out.Solvers, s.String())
	}
	if r.Pass {
		out.Verdict = "pass"
		what := "steps replayed"
		if spc.Audit.Confidential {
			what = "challenged tiles proven in zero knowledge"
		}
		c.event("job %s: audit passed (%d %s, confidence %.4f)", short(j.id), r.StepsChecked, what, float64(r.ConfidencePPM)/1e6)
		if _, err := c.svc.Settle(ctx, id, []service.VerifierPay{{VerifierID: verifier.Party, Audits: 1}}); err != nil {
			return err
		}
		out.State = "settled"
		c.event("job %s settled: solver paid, verifier paid", short(j.id))
	} else {
		out.Verdict = "fail"
		c.event("job %s: audit FAILED at step %d (%s); dispute opened", short(j.id), r.FirstBadStep, r.Reason)
		referee := func(ctx context.Context) (bool, string, error) {
			return c.refereeReplay(ctx, j.id, spc, tr, solver, e.Sender, r)
		}
		if spc.Audit.Confidential {
			referee = func(ctx context.Context) (bool, string, error) {
				return c.refereeZK(ctx, j.id, spc, tr, beacon, solver, r)
			}
		}
		go c.dispute(j.id, solver, e.Sender, verifier.Party, referee)
		return nil
	}
	c.finish(j.id, out)
	return nil
}

func (c *Node) finish(id spec.JobID, out *Outcome) {
	c.mu.Lock()
	if j := c.jobs[id]; j != nil {
		j.outcome = out
	}
	c.mu.Unlock()
	c.done <- id
}

// sendBeacon gives a confidential job's solver its audit beacon.
func (c *Node) sendBeacon(ctx context.Context, id spec.JobID, solver peer.ID, beacon []byte) {
	if _, err := c.P2P.Request(ctx, solver, wire.AssignProtocol, id, &wire.Beacon{Beacon: beacon}, wire.TypeAck); err != nil {
		c.event("job %s: sending the audit beacon to %s: %v", short(id), solver.ShortString(), err)
	}
}

// proofAllowance is the audit time allowed per challenged tile of a
// confidential job (a proof takes ~1.5 s on two cores).
const proofAllowance = 10 * time.Second
