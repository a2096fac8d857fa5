package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

type job struct {
	id          spec.JobID
	spec        *spec.Spec
	specJSON    []byte
	solver      peer.ID
	solvers     []peer.ID
	step        int64
	lastBeat    time.Time
	checkpoints map[int64]checkpoint
	trace       *wire.TraceCommit
	auditor     peer.ID
	tried       map[peer.ID]bool
	beacon      []byte
	outcome     *Outcome
	auditTimer  *time.Timer
	// replicating: a replica is fetching one of the job's checkpoints; the
	// next is replicated when it is done, so replication keeps pace with
	// the replica instead of queueing every checkpoint.
	replicating      bool
	replicatingSince time.Time
	replica          peer.ID // the verifier last asked to replicate
	replicaStep      int64   // the step it was asked for
}

type checkpoint struct {
	digest  [32]byte
	holders []peer.ID
	entries []wire.TraceEntry // the trace committed up to it
	pending bool              // a replica has been asked to hold it
}

// ResumePoint reports where the job solver is running (not yet committed)
// would resume if solver vanished now: the newest checkpoint of it that
// another registered peer holds, with the trace up to it.
func (c *Node) ResumePoint(solver peer.ID) (job spec.JobID, step int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, j := range c.jobs {
		if j.solver != solver || j.trace != nil || j.outcome != nil {
			continue // not running
		}
		for st, cp := range j.checkpoints {
			if st <= step || len(cp.entries) == 0 {
				continue
			}
			for _, h := range cp.holders {
				if h != solver && c.peers[h] != nil {
					job, step, ok = id, st, true
					break
				}
			}
		}
	}
	return job, step, ok
}

// Offer announces a posted job (its spec) on the jobs topic and keeps it
// for assignment.
func (c *Node) Offer(ctx context.Context, specJSON []byte) error {
	s, err := spec.Decode(specJSON)
	if err != nil {
		return err
	}
	id, err := s.ID()
	if err != nil {
		return err
	}
	if s.Audit.Confidential && c.cfg.Keys == nil {
		return fmt.Errorf("job %s is confidential and this coordinator has no zk verifying keys to referee it", short(id))
	}
	c.mu.Lock()
	if c.jobs[id] == nil {
		c.jobs[id] = &job{id: id, spec: s, specJSON: specJSON, checkpoints: map[int64]checkpoint{}, tried: map[peer.ID]bool{}}
	}
	c.mu.Unlock()
	c.event("job %s offered (%d steps, batch %d)", short(id), s.Steps, s.BatchSize)
	if c.P2P.PubSub != nil {
		if err := c.P2P.Publish(ctx, wire.JobsTopic, id, &wire.JobOffer{SpecJSON: specJSON, Confidential: s.Audit.Confidential}); err != nil {
			return err
		}
	}
	// Posting may have matched the job with a waiting ask already.
	rec, err := c.svc.Job(ctx, id)
	if err != nil {
		return err
	}
	c.startIfMatched(ctx, rec)
	return nil
}

// startIfMatched starts a job the market matched outside an ask of ours
// (at posting, or when a vanished solver's job was bid again).
func (c *Node) startIfMatched(ctx context.Context, rec *service.Job) {
	if rec.State == lifecycle.Matched && len(rec.Solvers) > 0 {
		if p, ok := c.peerOfParty(rec.Solvers[len(rec.Solvers)-1].SolverID); ok {
			c.start(ctx, rec.ID, p)
		}
	}
}

// ask posts the solver's ask to the market and starts the jobs it
// matched.
func (c *Node) ask(ctx context.Context, solver peer.ID) {
	c.mu.Lock()
	p := c.peers[solver]
	if p == nil || p.Busy {
		c.mu.Unlock()
		return
	}
	party, price := p.Party, p.Hello.AskMicroUSDPerUnit
	c.mu.Unlock()
	matched, err := c.svc.PostAsk(ctx, service.Ask{SolverID: party, PriceMicroUSDPerCU: price, Capacity: 1, TTL: time.Hour})
	if err != nil {
		c.event("ask of %s refused: %v", solver.ShortString(), err)
		return
	}
	for _, jid := range matched {
		c.start(ctx, jid, solver)
	}
}

// Rematch asks every idle solver again: jobs that are waiting (posted, or
// resumable after a solver vanished) get matched.
func (c *Node) Rematch(ctx context.Context) {
	c.mu.Lock()
	var idle []peer.ID
	for _, p := range c.peers {
		if p.Role == wire.RoleSolver && !p.Busy && c.P2P.Host.Network().Connectedness(p.ID) == network.Connected {
			idle = append(idle, p.ID)
		}
	}
	c.mu.Unlock()
	sort.Slice(idle, func(i, k int) bool { return idle[i] < idle[k] })
	for _, s := range idle {
		c.ask(ctx, s)
	}
}

func (c *Node) start(ctx context.Context, jid string, solver peer.ID) {
	id, err := spec.ParseJobID(jid)
	if err != nil {
		return
	}
	c.mu.Lock()
	j := c.jobs[id]
	if j == nil {
		c.mu.Unlock()
		c.event("job %s matched but never offered here", jid[:12])
		return
	}
	resume := int64(0)
	var digest [32]byte
	var holders []peer.ID
	var entries []wire.TraceEntry
	for step, cp := range j.checkpoints {
		// A confidential job restarts from step 0: its checkpoints never
		// leave the solver that made them (solver/daemon).
		if j.spec.Audit.Confidential || step <= resume || len(cp.entries) == 0 || step >= j.spec.Steps {
			continue
		}
		// Only holders still registered (a vanished solver is not).
		var live []peer.ID
		for _, h := range cp.holders {
			if c.peers[h] != nil {
				live = append(live, h)
			}
		}
		if len(live) > 0 {
			resume, digest, holders, entries = step, cp.digest, live, cp.entries
		}
	}
	j.solver, j.lastBeat = solver, time.Now()
	j.solvers = append(j.solvers, solver)
	c.peers[solver].Busy = true
	specJSON := j.specJSON
	c.mu.Unlock()
	if _, err := c.svc.Advance(ctx, jid, lifecycle.EventStart); err != nil {
		c.event("job %s start: %v", jid[:12], err)
		return
	}
	msg := &wire.Assign{SpecJSON: specJSON, ResumeStep: resume, ResumeDigest: digest, Providers: holders, Entries: entries, ProviderAddrs: c.addrsOf(holders)}
	if resume > 0 {
		// The holders serve the checkpoint to the solver they are shown a
		// grant for.
		if msg.Grant, err = exchange.IssueGrant(c.P2P, id, solver, exchange.GrantTTL); err != nil {
			c.event("job %s: granting the resuming solver: %v", jid[:12], err)
		}
	}
	if _, err := c.P2P.Request(ctx, solver, wire.AssignProtocol, id, msg, wire.TypeAck); err != nil {
		c.event("job %s: assigning to %s failed: %v", jid[:12], solver.ShortString(), err)
		c.vanish(ctx, id)
		return
	}
	if resume > 0 {
		c.event("job %s assigned to %s, resuming from the checkpoint at step %d held by %d peer(s)", jid[:12], solver.ShortString(), resume, len(holders))
	} else {
		c.event("job %s assigned to %s", jid[:12], solver.ShortString())
	}
	go c.watch(id, solver)
}

// watch declares the job's solver vanished when it stops heartbeating.
func (c *Node) watch(id spec.JobID, solver peer.ID) {
	t := time.NewTicker(c.cfg.HeartbeatTimeout / 4)
	defer t.Stop()
	for range t.C {
		c.mu.Lock()
		j := c.jobs[id]
		if j == nil || j.solver != solver || j.trace != nil || j.outcome != nil {
			c.mu.Unlock()
			return
		}
		silent := time.Since(j.lastBeat) > c.cfg.HeartbeatTimeout
		c.mu.Unlock()
		if silent {
			c.event("solver %s went silent on job %s", solver.ShortString(), short(id))
			c.vanish(context.Background(), id)
			return
		}
	}
}

func (c *Node) vanish(ctx context.Context, id spec.JobID) {
	c.mu.Lock()
	j := c.jobs[id]
	if j != nil && j.solver != "" {
		if p := c.peers[j.solver]; p != nil {
			delete(c.peers, j.solver) // gone: it must say hello again
		}
		j.solver = ""
	}
	c.mu.Unlock()
	rec, err := c.svc.Vanish(ctx, id.String())
	if err != nil {
		c.event("job %s vanish: %v", short(id), err)
		return
	}
	c.event("job %s is resumable from its last announced checkpoint", short(id))
	if rec.State == lifecycle.Matched {
		c.startIfMatched(ctx, rec)
		return
	}
	c.Rematch(ctx)
}

func (c *Node) jobOf(e *wire.Envelope) (*job, error) {
	j := c.jobs[spec.JobID(e.Job)]
	if j == nil {
		return nil, fmt.Errorf("%w: unknown job", wire.ErrWrongJob)
	}
	return j, nil
}

func (c *Node) traceCommit(e *wire.Envelope, t *wire.TraceCommit) error {
	c.mu.Lock()
	j, err := c.jobOf(e)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if j.solver != e.Sender || j.trace != nil {
		c.mu.Unlock()
		return fmt.Errorf("trace of job %s from a peer that is not running it", short(j.id))
	}
	tr := wire.Trace(j.id, t.Entries)
	if err := tr.Check(j.spec); err != nil || tr.Root() != merkle.Digest(t.TraceRoot) || t.Steps != j.spec.Steps {
		c.mu.Unlock()
		return fmt.Errorf("trace of job %s does not match its root or its spec: %v", short(j.id), err)
	}
	// A confidential job commits its zk trace with its digest trace;
	// another job commits none.
	if j.spec.Audit.Confidential {
		if _, err := zkchallenge.ZKTraceOf(j.spec, wire.ZKEntries(t.ZKEntries)); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("zk trace of confidential job %s: %w", short(j.id), err)
		}
	} else if len(t.ZKEntries) > 0 {
		c.mu.Unlock()
		return fmt.Errorf("zk trace for job %s, which is not confidential", short(j.id))
	}
	j.trace = t
	if p := c.peers[e.Sender]; p != nil {
		p.Busy = false
	}
	c.mu.Unlock()
	ctx := context.Background()
	id := j.id.String()
	if _, err := c.svc.Checkpoint(ctx, id, t.Steps); err != nil && !errors.Is(err, service.ErrInvalid) {
		c.event("job %s: %v", short(j.id), err)
	}
	for _, ev := range []lifecycle.Event{lifecycle.EventCommit, lifecycle.EventOpenAudit} {
		if _, err := c.svc.Advance(ctx, id, ev); err != nil {
			return err
		}
	}
	beacon := make([]byte, 32)
	if _, err := rand.Read(beacon); err != nil {
		return err
	}
	c.mu.Lock()
	j.beacon = beacon
	c.mu.Unlock()
	c.event("job %s committed by %s: trace root %x…, %d digests; beacon drawn", short(j.id), e.Sender.ShortString(), t.TraceRoot[:6], len(t.Entries))
	if c.P2P.PubSub != nil {
		// The opened audit is public (without the trace entries, which
		// the assigned verifier gets directly): one trace root and one
		// beacon per job, for everyone to see.
		open := &wire.AuditTask{Solver: e.Sender, TraceRoot: t.TraceRoot, Beacon: beacon, SpecJSON: j.specJSON}
		if err := c.P2P.Publish(ctx, wire.AuditsTopic, j.id, open); err != nil {
			c.event("job %s: publishing the audit: %v", short(j.id), err)
		}
	}
	go func() {
		if j.spec.Audit.Confidential {
			// The solver proves only the tiles the beacon challenges, and
			// starts before the verifier asks.
			c.sendBeacon(context.Background(), j.id, e.Sender, beacon)
		}
		c.assignAudit(j.id)
	}()
	go c.Rematch(ctx)
	return nil
}
