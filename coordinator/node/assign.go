package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

type job struct {
	id       spec.JobID
	spec     *spec.Spec
	specJSON []byte
	// deadline: the job expires if it is not over by then (posting time
	// plus Config.JobTimeout, by the service's clock).
	deadline    time.Time
	solver      peer.ID
	solvers     []peer.ID
	step        int64
	lastBeat    time.Time
	checkpoints map[int64]checkpoint
	trace       *wire.TraceCommit
	beacon      []byte
	// The audit: the current auditor, when it must have reported, the
	// verifiers that had the audit (silent or overruled), and when the
	// next assignment may be tried (zero: now).
	auditor       peer.ID
	auditDeadline time.Time
	tried         map[peer.ID]bool
	nextAssign    time.Time
	// busy: a service call that moves the job (an assignment, a
	// settlement, a dispute, an expiry) is in flight; the clock leaves the
	// job alone until it is done.
	busy bool
	// disputed: a dispute recovered after a restart, to replay once both
	// parties are back (report holds the accusation).
	disputed *wire.AuditReport
	// slashed: the parties slashed over the job so far.
	slashed []peer.ID
	outcome *Outcome
	// replicating: a replica is fetching one of the job's checkpoints; the
	// next is replicated when it is done, so replication keeps pace with
	// the replica instead of queueing every checkpoint.
	replicating      bool
	replicatingSince time.Time
	replica          peer.ID    // the verifier last asked to replicate
	replicaStep      int64      // the step it was asked for
	marks            []Mark     // checkpoint announcements, for the client's ETA (progress.go)
	lossQ16          int64      // the loss in the solver's last heartbeat (progress.go)
	backend          string     // where the current solver trains it, as recorded (its hello, then its heartbeats)
	losses           []LossMark // the loss curve so far, thinned (progress.go)
}

type checkpoint struct {
	digest  [32]byte
	holders []peer.ID
	entries []wire.TraceEntry // the trace committed up to it
	pending bool              // a replica has been asked to hold it
}

// newJob is the node's record of a job the service holds.
func (c *Node) newJob(id spec.JobID, s *spec.Spec, specJSON []byte, posted time.Time) *job {
	return &job{id: id, spec: s, specJSON: specJSON, deadline: posted.Add(c.cfg.JobTimeout),
		checkpoints: map[int64]checkpoint{}, tried: map[peer.ID]bool{}}
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
// for assignment; the job's deadline runs from its posting. A
// confidential job this node cannot referee (no zk keys) is refused with
// ErrNoKeys, and still expires at its deadline.
func (c *Node) Offer(ctx context.Context, specJSON []byte) error {
	s, err := spec.Decode(specJSON)
	if err != nil {
		return err
	}
	id, err := s.ID()
	if err != nil {
		return err
	}
	rec, err := c.svc.Job(ctx, id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.jobs[id] == nil && !rec.State.Terminal() {
		c.jobs[id] = c.newJob(id, s, specJSON, posted(rec))
	}
	c.mu.Unlock()
	if s.Audit.Confidential && c.cfg.Keys == nil {
		return fmt.Errorf("%w: job %s", ErrNoKeys, short(id))
	}
	c.log.Info("job offered", jobAttr(id), "steps", s.Steps, "batch", s.BatchSize)
	if c.P2P.PubSub != nil {
		if err := c.P2P.Publish(ctx, wire.JobsTopic, id, &wire.JobOffer{SpecJSON: specJSON, Confidential: s.Audit.Confidential}); err != nil {
			return err
		}
	}
	// Posting may have matched the job with a waiting ask already.
	c.startIfMatched(ctx, rec)
	return nil
}

// posted is when the job was posted (its first history entry).
func posted(rec *service.Job) time.Time {
	if len(rec.History) > 0 {
		return rec.History[0].At
	}
	return time.Time{}
}

// startIfMatched starts a job the market matched outside an ask of ours
// (at posting, or when a vanished solver's job was bid again).
func (c *Node) startIfMatched(ctx context.Context, rec *service.Job) {
	if rec.State == lifecycle.Matched && len(rec.Solvers) > 0 {
		if p, ok := c.peerOfParty(rec.Solvers[len(rec.Solvers)-1].SolverID); ok {
			if id, err := spec.ParseJobID(rec.ID); err == nil {
				c.start(ctx, id, p)
			}
		}
	}
}

// ask posts the solver's ask to the market and starts the jobs it
// matched.
func (c *Node) ask(ctx context.Context, solver peer.ID) {
	c.mu.Lock()
	p := c.peers[solver]
	if p == nil || !p.available() {
		c.mu.Unlock()
		return
	}
	party, price := p.Party, p.Hello.AskNanoUSDPerCU
	c.mu.Unlock()
	matched, err := c.svc.PostAsk(ctx, service.Ask{SolverID: party, PriceNanoUSDPerCU: price, Capacity: 1, TTL: time.Hour})
	if err != nil {
		c.log.Warn("ask refused", "peer", shortPeer(solver), "err", err)
		return
	}
	c.mu.Lock()
	p = c.peers[solver]
	paused := p == nil || p.Paused
	c.mu.Unlock()
	if paused && len(matched) == 0 {
		// It paused (or left) while the ask was being posted, after its
		// withdrawal: take the ask back. (A job matched meanwhile is
		// refused by the solver and goes back to the market.)
		if _, err := c.svc.WithdrawAsk(ctx, party); err != nil {
			c.log.Warn("withdrawing a paused solver's ask", "peer", shortPeer(solver), "err", err)
		}
		return
	}
	for _, jid := range matched {
		id, err := spec.ParseJobID(jid)
		if err != nil {
			c.log.Error("market matched a malformed job id", "job", jid, "err", err)
			continue
		}
		c.start(ctx, id, solver)
	}
}

// Rematch asks every idle solver again: jobs that are waiting (posted, or
// resumable after a solver vanished) get matched.
func (c *Node) Rematch(ctx context.Context) {
	c.mu.Lock()
	var idle []peer.ID
	for _, p := range c.peers {
		if p.available() && c.P2P.Host.Network().Connectedness(p.ID) == network.Connected {
			idle = append(idle, p.ID)
		}
	}
	c.mu.Unlock()
	sort.Slice(idle, func(i, k int) bool { return idle[i] < idle[k] })
	for _, s := range idle {
		c.ask(ctx, s)
	}
}

func (c *Node) start(ctx context.Context, id spec.JobID, solver peer.ID) {
	c.mu.Lock()
	j := c.jobs[id]
	if j == nil || j.outcome != nil {
		c.mu.Unlock()
		c.log.Warn("job matched but not offered here", jobAttr(id))
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
	backend := ""
	if p := c.peers[solver]; p != nil {
		p.Busy = true
		// What its daemon resolved to train on (not merely a GPU
		// present): the job's record keeps it with the assignment, and
		// a heartbeat that says otherwise (auto put this job on the CPU)
		// corrects it (registry.go).
		backend = p.Hello.Backend
	}
	j.backend = backend
	specJSON, solvers := j.specJSON, slices.Clone(j.solvers)
	c.mu.Unlock()
	if _, err := c.svc.Start(ctx, id.String(), backend); err != nil {
		c.log.Error("job start", jobAttr(id), "err", err)
		return
	}
	// A restarted node gives the job back to this solver if it comes back
	// (recover): the record names it.
	if err := c.saveRecord(id, &record{Solvers: solvers}); err != nil {
		c.log.Warn("recording the job's solver", jobAttr(id), "err", err)
	}
	msg := &wire.Assign{SpecJSON: specJSON, ResumeStep: resume, ResumeDigest: digest, Providers: holders, Entries: entries, ProviderAddrs: c.addrsOf(holders)}
	if resume > 0 {
		// The holders serve the checkpoint to the solver they are shown a
		// grant for.
		var err error
		if msg.Grant, err = exchange.IssueGrant(c.P2P, id, solver, exchange.GrantTTL); err != nil {
			c.log.Warn("granting the resuming solver", jobAttr(id), "err", err)
		}
	}
	if _, err := c.P2P.Request(ctx, solver, wire.AssignProtocol, id, msg, wire.TypeAck); err != nil {
		if errors.Is(err, p2p.ErrRemote) {
			// It answered and refused (paused, busy): it stays registered.
			c.declined(ctx, id, solver, err)
			return
		}
		c.log.Warn("assignment failed", jobAttr(id), "peer", shortPeer(solver), "err", err)
		if rec := c.vanish(ctx, id); rec != nil {
			c.rematch(ctx, rec)
		}
		return
	}
	if resume > 0 {
		c.log.Info("job assigned, resuming from a checkpoint", jobAttr(id), "peer", shortPeer(solver), "resume_step", resume, "holders", len(holders))
		return
	}
	c.log.Info("job assigned", jobAttr(id), "peer", shortPeer(solver))
}

// vanish takes the job from its silent solver: the job becomes resumable
// (and is bid again). It returns the service's record, nil on failure.
func (c *Node) vanish(ctx context.Context, id spec.JobID) *service.Job {
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
		c.log.Warn("job vanish", jobAttr(id), "err", err)
		return nil
	}
	// What the vanished solver announced beyond the committed step binds
	// nobody: the job resumes from the committed step, and the solver that
	// resumes it announces those steps again (an honest one with the run's
	// digests, which a cheater's announcements must not contradict).
	c.mu.Lock()
	if j != nil {
		for st := range j.checkpoints {
			if st > rec.CommittedStep {
				delete(j.checkpoints, st)
			}
		}
		if j.replicaStep > rec.CommittedStep {
			j.replicaStep, j.replicating = rec.CommittedStep, false
		}
	}
	c.mu.Unlock()
	c.log.Info("job resumable", jobAttr(id), "from_step", rec.CommittedStep)
	return rec
}

// rematch starts a job the market matched again after its solver
// vanished, or asks the idle solvers.
func (c *Node) rematch(ctx context.Context, rec *service.Job) {
	if rec.State == lifecycle.Matched {
		c.startIfMatched(ctx, rec)
		return
	}
	c.Rematch(ctx)
}

func (c *Node) jobOf(e *wire.Envelope) (*job, error) {
	j := c.jobs[spec.JobID(e.Job)]
	if j == nil {
		return nil, ErrUnknownJob
	}
	return j, nil
}

func (c *Node) traceCommit(ctx context.Context, e *wire.Envelope, t *wire.TraceCommit) error {
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
	if j.solver != e.Sender || j.trace != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: trace of job %s from a peer that is not running it", ErrNotYours, short(j.id))
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
	beacon := make([]byte, 32)
	if _, err := rand.Read(beacon); err != nil {
		c.mu.Unlock()
		return err
	}
	j.trace, j.beacon = t, beacon
	solvers := append([]peer.ID(nil), j.solvers...)
	if p := c.peers[e.Sender]; p != nil {
		p.Busy = false
	}
	c.mu.Unlock()
	// The trace and the beacon are stored before the audit opens, so that
	// a restarted coordinator audits with the same ones.
	if err := c.saveRecord(j.id, &record{Solvers: solvers, Trace: t, Beacon: beacon}); err != nil {
		c.mu.Lock()
		j.trace, j.beacon = nil, nil
		c.mu.Unlock()
		return err
	}
	if err := c.saveFinal(j.id, Final{Steps: t.Steps, TraceRoot: t.TraceRoot, FinalDigest: t.FinalDigest, Solver: e.Sender}); err != nil {
		c.log.Warn("the client will not be able to download the final weights", jobAttr(j.id), "err", err)
	}
	if err := c.openAudit(ctx, j, t.Steps); err != nil {
		return err
	}
	c.log.Info("job committed", jobAttr(j.id), "peer", shortPeer(e.Sender), "trace_root", fmt.Sprintf("%x", t.TraceRoot[:6]), "digests", len(t.Entries))
	c.publishAudit(ctx, j.id, e.Sender, t, beacon, j.specJSON)
	c.spawn(func(ctx context.Context) {
		if j.spec.Audit.Confidential {
			// The solver proves only the tiles the beacon challenges, and
			// starts before the verifier asks.
			c.sendBeacon(ctx, j.id, e.Sender, beacon)
		}
		c.assignAudit(ctx, j.id)
	})
	c.spawn(c.Rematch)
	return nil
}

// openAudit moves a committed job to its audit window in the service.
func (c *Node) openAudit(ctx context.Context, j *job, steps int64) error {
	if _, err := c.svc.Checkpoint(ctx, j.id.String(), steps); err != nil && !errors.Is(err, service.ErrInvalid) && !errors.Is(err, service.ErrIllegalState) {
		c.log.Warn("job checkpoint", jobAttr(j.id), "err", err)
	}
	for _, ev := range []lifecycle.Event{lifecycle.EventCommit, lifecycle.EventOpenAudit} {
		if _, err := c.svc.Advance(ctx, j.id.String(), ev); err != nil {
			return err
		}
	}
	return nil
}

// publishAudit makes the opened audit public (without the trace entries,
// which the assigned verifier gets directly): one trace root and one
// beacon per job, for everyone to see.
func (c *Node) publishAudit(ctx context.Context, id spec.JobID, solver peer.ID, t *wire.TraceCommit, beacon, specJSON []byte) {
	if c.P2P.PubSub == nil {
		return
	}
	open := &wire.AuditTask{Solver: solver, TraceRoot: t.TraceRoot, Beacon: beacon, SpecJSON: specJSON}
	if err := c.P2P.Publish(ctx, wire.AuditsTopic, id, open); err != nil {
		c.log.Warn("publishing the audit", jobAttr(id), "err", err)
	}
}

// OfferAsync offers a posted job (Offer) in the node's group, so that the
// caller — the HTTP API's posting handler — does not wait for the offer
// and the first assignment; an error is logged.
func (c *Node) OfferAsync(specJSON []byte) {
	c.spawn(func(ctx context.Context) {
		if err := c.Offer(ctx, specJSON); err != nil {
			c.log.Error("offer", "err", err)
		}
	})
}
