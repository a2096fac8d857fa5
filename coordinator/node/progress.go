package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/spec"
)

// What the client endpoints (coordinator/api) ask of the node: a running
// job's progress, a committed job's final state, and news of a job the
// API ended (a cancellation).

// Errors of FinalState.
var (
	// ErrNoFinal: the job has committed no final state (yet, or ever).
	ErrNoFinal = errors.New("node: the job has no committed final state")
	// ErrConfidential: the job is confidential; its state never leaves
	// its solver, not even to the coordinator.
	ErrConfidential = errors.New("node: a confidential job's state never leaves its solver")
	// ErrFetch: no holder of the final checkpoint served it.
	ErrFetch = errors.New("node: the final checkpoint could not be fetched")
)

// maxMarks bounds the checkpoint times kept per job (the ETA needs a few).
const maxMarks = 16

// Mark is when the solver announced a checkpoint.
type Mark struct {
	Step int64
	At   time.Time
}

// Final is a job's committed end: the trace root and the final state
// digest (the trace's last entry), and the solver that committed them,
// which holds the final checkpoint.
type Final struct {
	Steps       int64
	TraceRoot   [32]byte
	FinalDigest [32]byte
	Solver      peer.ID
}

// Progress is what the node knows of a job's training beyond the
// service's record.
type Progress struct {
	// ReportedStep is the step the solver last reported in a heartbeat
	// (not committed: a solver's word).
	ReportedStep int64
	// LossQ16 is the training loss (the mean loss of a step's batch, Q16
	// nats) the solver last reported in a heartbeat, 0 if none: its word,
	// not audited.
	LossQ16 int64
	// Checkpoints are the newest checkpoint announcements of the running
	// job, oldest first (at most maxMarks), timed by the node's clock.
	Checkpoints []Mark
	// Losses is the loss curve the solver's heartbeats drew, oldest
	// first: at most maxLosses points, thinned evenly as the job runs
	// (its word, not audited; kept while the node remembers the job).
	Losses []LossMark
	// Final is set once the solver committed its trace; it outlives the
	// node's memory of the job (it is stored).
	Final *Final
}

// finalKey is where a job's Final is stored (beside the node's record,
// which is dropped when the job ends; this one is kept, ~250 bytes a job).
func finalKey(id spec.JobID) string { return "node/final/" + id.String() }

type storedFinal struct {
	Steps  int64   `json:"steps"`
	Root   []byte  `json:"root"`
	Digest []byte  `json:"digest"`
	Solver peer.ID `json:"solver"`
}

// saveFinal stores the committed end of job id.
func (c *Node) saveFinal(id spec.JobID, f Final) error {
	b, err := json.Marshal(storedFinal{Steps: f.Steps, Root: f.TraceRoot[:], Digest: f.FinalDigest[:], Solver: f.Solver})
	if err != nil {
		return err
	}
	if err := c.svc.Store().PutRaw(finalKey(id), b); err != nil {
		return fmt.Errorf("store the final digest of job %s: %w", short(id), err)
	}
	return nil
}

func (c *Node) loadFinal(id spec.JobID) (*Final, error) {
	b, ok, err := c.svc.Store().GetRaw(finalKey(id))
	if err != nil || !ok {
		return nil, err
	}
	var s storedFinal
	if err := json.Unmarshal(b, &s); err != nil || len(s.Root) != 32 || len(s.Digest) != 32 {
		return nil, fmt.Errorf("final digest of job %s: malformed record", short(id))
	}
	f := &Final{Steps: s.Steps, Solver: s.Solver}
	copy(f.TraceRoot[:], s.Root)
	copy(f.FinalDigest[:], s.Digest)
	return f, nil
}

// maxLosses bounds the loss curve kept per job: when full, every other
// point is dropped, so the curve spans the whole run at half the density.
const maxLosses = 256

// LossMark is one point of a job's loss curve: the loss (Q16 nats) the
// solver reported at a step.
type LossMark struct {
	Step    int64
	LossQ16 int64
}

// noteLoss adds a heartbeat's loss to the job's curve (a step not past the
// last point, or no loss, adds nothing). Call with c.mu held.
func (j *job) noteLoss(step, lossQ16 int64) {
	if lossQ16 <= 0 || (len(j.losses) > 0 && step <= j.losses[len(j.losses)-1].Step) {
		return
	}
	if len(j.losses) >= maxLosses {
		kept := j.losses[:0]
		for i := 0; i < len(j.losses); i += 2 {
			kept = append(kept, j.losses[i])
		}
		j.losses = kept
	}
	j.losses = append(j.losses, LossMark{Step: step, LossQ16: lossQ16})
}

// noteCheckpoint records when the running job's solver announced the
// checkpoint at step (announcements of older steps, such as the re-announce
// after the commit, are not news). Call with c.mu held.
func (j *job) noteCheckpoint(step int64, at time.Time) {
	if j.trace != nil || (len(j.marks) > 0 && step <= j.marks[len(j.marks)-1].Step) {
		return
	}
	j.marks = append(j.marks, Mark{Step: step, At: at})
	if len(j.marks) > maxMarks {
		j.marks = append(j.marks[:0], j.marks[len(j.marks)-maxMarks:]...)
	}
}

// Progress returns what the node knows of job id's training; the zero
// Progress if nothing.
func (c *Node) Progress(id spec.JobID) Progress {
	var p Progress
	c.mu.Lock()
	if j := c.jobs[id]; j != nil {
		p.ReportedStep, p.LossQ16 = j.step, j.lossQ16
		p.Checkpoints = append([]Mark(nil), j.marks...)
		p.Losses = append([]LossMark(nil), j.losses...)
	}
	c.mu.Unlock()
	if f, err := c.loadFinal(id); err == nil {
		p.Final = f
	}
	return p
}

// FinalState fetches job id's final checkpoint from the solver that
// committed it, over the checkpoint exchange with a grant the coordinator
// issues to itself, checked chunk by chunk against the committed final
// digest, which it returns with the state. A confidential job is refused
// (ErrConfidential) before anything is asked: its state never leaves the
// solver.
func (c *Node) FinalState(ctx context.Context, id spec.JobID) (*spec.State, [32]byte, error) {
	rec, err := c.svc.Job(ctx, id)
	if err != nil {
		return nil, [32]byte{}, err
	}
	s, err := spec.Decode(rec.Spec)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("job %s: %w", short(id), err)
	}
	if s.Audit.Confidential {
		return nil, [32]byte{}, ErrConfidential
	}
	f, err := c.loadFinal(id)
	if err != nil {
		return nil, [32]byte{}, err
	}
	if f == nil {
		return nil, [32]byte{}, ErrNoFinal
	}
	grant, err := exchange.IssueGrant(c.P2P, id, c.P2P.ID(), exchange.GrantTTL)
	if err != nil {
		return nil, [32]byte{}, err
	}
	st, err := exchange.FetchState(ctx, c.P2P, []peer.ID{f.Solver}, s, id, f.Steps, f.FinalDigest, exchange.Options{Grant: grant, Logger: c.log})
	if err != nil {
		c.log.Warn("fetching the final weights", jobAttr(id), "peer", shortPeer(f.Solver), "err", err)
		return nil, f.FinalDigest, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	c.log.Info("final weights fetched for the client", jobAttr(id), "peer", shortPeer(f.Solver), "step", f.Steps)
	return st, f.FinalDigest, nil
}

// JobEnded tells the node that the service ended job id outside it (the
// client cancelled it through the API): the node records the end at once,
// frees the job's solver and stops the job's timeouts, rather than
// noticing at the job's deadline.
func (c *Node) JobEnded(ctx context.Context, id spec.JobID) {
	rec, err := c.svc.Job(ctx, id)
	if err != nil || !rec.State.Terminal() {
		return
	}
	c.finish(id, rec.State, VerdictNone, "", "ended outside the node: "+rec.State.String())
}
