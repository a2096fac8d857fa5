package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

func (c *Node) announce(ctx context.Context, e *wire.Envelope, a *wire.CheckpointAnnounce) error {
	c.mu.Lock()
	j, err := c.jobOf(e)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if a.Step > j.spec.Steps {
		c.mu.Unlock()
		return fmt.Errorf("checkpoint at step %d of a %d-step job", a.Step, j.spec.Steps)
	}
	cp := j.checkpoints[a.Step]
	if cp.digest != ([32]byte{}) && cp.digest != a.Digest {
		c.mu.Unlock()
		return fmt.Errorf("checkpoint at step %d announced with another digest", a.Step)
	}
	mine := j.solver == e.Sender
	if !mine {
		// Only the replica asked to hold a checkpoint the solver announced
		// confirms it; nobody else may name holders or digests.
		if !cp.pending || cp.digest != a.Digest || j.replica != e.Sender || len(a.Entries) > 0 {
			c.mu.Unlock()
			return fmt.Errorf("%w: unsolicited checkpoint at step %d", ErrNotYours, a.Step)
		}
		if !containsPeer(cp.holders, e.Sender) {
			cp.holders = append(cp.holders, e.Sender)
		}
		j.checkpoints[a.Step] = cp
		j.replicating = false
		running := j.trace == nil
		c.mu.Unlock()
		// The checkpoint now outlives its solver: the steps up to it are
		// committed (a solver that vanishes is paid up to here, and the
		// job resumes from here). A job already committed has all its
		// steps recorded.
		if !running {
			return nil
		}
		if _, err := c.svc.Checkpoint(ctx, j.id.String(), a.Step); err != nil && !errors.Is(err, service.ErrInvalid) {
			c.log.Warn("job checkpoint", jobAttr(j.id), "step", a.Step, "err", err)
		}
		return nil
	}
	if len(a.Entries) > 0 {
		// The trace so far must be a prefix of the run's trace ending at
		// this checkpoint. The steps are computed (trace.StepAt), never
		// listed: the spec's step count is the client's number.
		n := len(a.Entries)
		if int64(n) > j.spec.Digests() || a.Entries[n-1].Step != a.Step || a.Entries[n-1].Digest != a.Digest {
			c.mu.Unlock()
			return fmt.Errorf("checkpoint at step %d with a trace that does not end at it", a.Step)
		}
		for i, en := range a.Entries {
			if want, _ := trace.StepAt(j.spec, int64(i)); en.Step != want {
				c.mu.Unlock()
				return fmt.Errorf("checkpoint at step %d: trace entry %d is step %d, want %d", a.Step, i, en.Step, want)
			}
		}
		cp.entries = a.Entries
	}
	cp.digest = a.Digest
	j.noteCheckpoint(a.Step, time.Now())
	if !containsPeer(cp.holders, e.Sender) {
		cp.holders = append(cp.holders, e.Sender)
	}
	// Keep a replica of the newest checkpoint, so that the job survives
	// its solver: one replication at a time per job, never of a checkpoint
	// older than one already replicated. A replica that has not confirmed
	// within replicaTimeout lost its fetch (it acknowledged the request
	// but could not complete it): move on. A confidential job's state
	// never leaves its solver, so it is never replicated.
	if j.replicating && time.Since(j.replicatingSince) > replicaTimeout {
		j.replicating = false
	}
	var replica peer.ID
	var solverAddrs []string
	if !j.spec.Audit.Confidential && !cp.pending && !j.replicating && j.trace == nil && len(cp.entries) > 0 && a.Step > j.replicaStep && a.Step < j.spec.Steps {
		replica = c.pickReplica(cp.holders)
		if replica != "" {
			cp.pending = true
			j.replica, j.replicaStep = replica, a.Step
			j.replicating, j.replicatingSince = true, time.Now()
			solverAddrs = c.addrsLocked([]peer.ID{e.Sender})
		}
	}
	j.checkpoints[a.Step] = cp
	c.mu.Unlock()
	if replica != "" {
		c.spawn(func(ctx context.Context) {
			req := &wire.CheckpointAnnounce{Step: a.Step, Digest: a.Digest, Providers: []peer.ID{e.Sender}, ProviderAddrs: solverAddrs}
			// The solver serves the checkpoint to the replica it grants.
			var err error
			if req.Grant, err = exchange.IssueGrant(c.P2P, j.id, replica, exchange.GrantTTL); err != nil {
				c.log.Warn("granting the replica", jobAttr(j.id), "err", err)
			}
			if _, err := c.P2P.Request(ctx, replica, wire.ReplicateProtocol, j.id, req, wire.TypeAck); err != nil {
				c.log.Warn("replication failed", jobAttr(j.id), "step", a.Step, "peer", shortPeer(replica), "err", err)
				c.mu.Lock()
				j.replicating = false
				c.mu.Unlock()
			}
		})
	}
	return nil
}

// replicaTimeout bounds how long one replication may block the next.
const replicaTimeout = 3 * time.Second

// pickReplica chooses an enrolled, bonded verifier that does not hold the
// checkpoint yet (verifiers keep replicas: they fetch checkpoints anyway
// to audit; a peer with nothing at stake — not enrolled, or, since
// verifiers sign up for themselves, without a bond — could take a replica
// and withhold it).
func (c *Node) pickReplica(holders []peer.ID) peer.ID {
	var best *Peer
	for _, p := range c.peers {
		if p.Role != wire.RoleVerifier || !p.Enrolled || p.NeedsBond || containsPeer(holders, p.ID) {
			continue
		}
		if best == nil || p.Party < best.Party {
			best = p
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}
