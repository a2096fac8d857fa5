package node

import (
	"context"
	"errors"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
)

// clock runs the node's timeouts every Tick (and when woken): solvers
// that stopped heartbeating, auditors past their deadline, audits waiting
// for a verifier, disputes to play again, and jobs past their deadline.
func (c *Node) clock(ctx context.Context) {
	t := time.NewTicker(c.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		c.sweep()
		c.prune(time.Now())
	}
}

// sweep starts what each job's timeouts call for. Jobs with a service
// call in flight (busy) are left alone, except that nothing new starts on
// a job past its deadline but its expiry.
func (c *Node) sweep() {
	now, svcNow := time.Now(), c.svc.Now()
	var silent, audits, expire []spec.JobID
	var replay []*job
	c.mu.Lock()
	for id, j := range c.jobs {
		switch {
		case j.outcome != nil || j.busy:
		case !svcNow.Before(j.deadline):
			j.busy = true
			expire = append(expire, id)
		case j.trace == nil:
			if j.solver != "" && now.Sub(j.lastBeat) > c.cfg.HeartbeatTimeout {
				j.busy = true
				silent = append(silent, id)
			}
		case j.disputed != nil:
			if !now.Before(j.nextAssign) && c.peers[j.solver] != nil && c.peers[j.auditor] != nil {
				j.busy = true
				replay = append(replay, j)
			}
		case (j.auditor == "" || now.After(j.auditDeadline)) && !now.Before(j.nextAssign):
			audits = append(audits, id)
		}
	}
	c.mu.Unlock()
	for _, id := range expire {
		c.spawn(func(ctx context.Context) { c.expire(ctx, id) })
	}
	for _, id := range silent {
		c.spawn(func(ctx context.Context) { c.silent(ctx, id) })
	}
	for _, id := range audits {
		c.spawn(func(ctx context.Context) { c.assignAudit(ctx, id) })
	}
	for _, j := range replay {
		c.mu.Lock()
		solver, verifier, r := j.solver, j.auditor, j.disputed
		c.mu.Unlock()
		c.log.Info("playing the dispute again", jobAttr(j.id))
		c.spawn(func(ctx context.Context) { c.dispute(ctx, j, solver, verifier, r) })
	}
}

// silent takes a job from its solver, which stopped heartbeating.
func (c *Node) silent(ctx context.Context, id spec.JobID) {
	c.mu.Lock()
	j := c.jobs[id]
	solver := j.solver
	c.mu.Unlock()
	c.log.Warn("solver went silent", jobAttr(id), "peer", shortPeer(solver))
	rec := c.vanish(ctx, id)
	// Free before rematching: the assignment's request must not hold up
	// the job's expiry.
	c.unbusy(j)
	if rec != nil {
		c.rematch(ctx, rec)
	}
}

// expire ends a job past its deadline (service.Expire): the escrow goes
// back to the client and every bond is released.
func (c *Node) expire(ctx context.Context, id spec.JobID) {
	c.mu.Lock()
	j := c.jobs[id]
	c.mu.Unlock()
	rec, err := c.svc.Expire(ctx, id)
	if err != nil {
		// A job the service already ended (through the HTTP API: a
		// cancellation) ends here as it did there.
		if errors.Is(err, service.ErrIllegalState) {
			if rec, jerr := c.svc.Job(ctx, id); jerr == nil && rec.State.Terminal() {
				c.finish(id, rec.State, VerdictNone, "", "ended outside the node")
				return
			}
		}
		c.log.Error("expiring the job", jobAttr(id), "err", err)
		c.unbusy(j)
		return
	}
	from := lifecycle.State(0)
	if n := len(rec.History); n >= 2 {
		from = rec.History[n-2].State
	}
	c.log.Warn("job expired: escrow refunded, bonds released", jobAttr(id), "in_state", from.String())
	c.finish(id, lifecycle.Expired, VerdictNone, "", "deadline passed in state "+from.String())
}
