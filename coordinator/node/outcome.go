package node

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
)

// Verdict is what the audit that ended a job found.
type Verdict uint8

// The verdicts.
const (
	// VerdictNone: no audit ended the job (it expired).
	VerdictNone Verdict = iota
	// VerdictPass: the auditor found the trace right.
	VerdictPass
	// VerdictFail: the auditor found a wrong step and the referee agreed.
	VerdictFail
)

// String is "", "pass" or "fail".
func (v Verdict) String() string {
	switch v {
	case VerdictPass:
		return "pass"
	case VerdictFail:
		return "fail"
	}
	return ""
}

// MarshalText writes String.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Outcome is where a job ended.
type Outcome struct {
	Job spec.JobID
	// State is terminal: settled, adjudicated_cheat, cancelled or expired.
	State   lifecycle.State
	Solvers []peer.ID
	// Verdict and Verifier: the audit that ended the job, if one did.
	Verdict  Verdict
	Verifier peer.ID
	// Slashed lists every party slashed over the job, in order (a falsely
	// accusing verifier, then perhaps the cheating solver).
	Slashed []peer.ID
	Reason  string
	// Ended is when the node saw the job end (zero in an outcome rebuilt
	// from the service's record after the node forgot the job).
	Ended time.Time
}

// MarshalJSON writes the outcome with the job ID in hex and peers as
// strings.
func (o Outcome) MarshalJSON() ([]byte, error) {
	type view struct {
		Job      string          `json:"job_id"`
		State    lifecycle.State `json:"state"`
		Solvers  []peer.ID       `json:"solvers"`
		Verdict  Verdict         `json:"audit_verdict,omitzero"`
		Verifier peer.ID         `json:"verifier,omitempty"`
		Slashed  []peer.ID       `json:"slashed,omitempty"`
		Reason   string          `json:"reason,omitempty"`
		Ended    time.Time       `json:"ended,omitzero"`
	}
	return json.Marshal(view{o.Job.String(), o.State, o.Solvers, o.Verdict, o.Verifier, o.Slashed, o.Reason, o.Ended})
}

// Outcome returns a finished job's outcome.
func (c *Node) Outcome(id spec.JobID) (*Outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.jobs[id]
	if j == nil || j.outcome == nil {
		return nil, false
	}
	o := *j.outcome
	return &o, true
}

// AwaitOutcome waits until job id has ended (or ctx is done, or the node
// closed) and returns its outcome. Nothing waits for a job unless someone
// calls this: a job's end never blocks on its readers. A job the node has
// forgot (Config.Retention) is answered from the service's record.
func (c *Node) AwaitOutcome(ctx context.Context, id spec.JobID) (*Outcome, error) {
	for {
		c.mu.Lock()
		var out *Outcome
		j := c.jobs[id]
		if j != nil && j.outcome != nil {
			o := *j.outcome
			out = &o
		}
		next := c.finished
		c.mu.Unlock()
		if out != nil {
			return out, nil
		}
		if j == nil {
			if out, err := c.recordedOutcome(ctx, id); out != nil || err != nil {
				return out, err
			}
		}
		select {
		case <-next:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// recordedOutcome rebuilds a finished job's outcome from the service's
// record: nil, nil while the job is not over (or not posted yet).
func (c *Node) recordedOutcome(ctx context.Context, id spec.JobID) (*Outcome, error) {
	rec, err := c.svc.Job(ctx, id)
	if errors.Is(err, service.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !rec.State.Terminal() {
		return nil, nil
	}
	out := &Outcome{Job: id, State: rec.State}
	for _, a := range rec.Solvers {
		if p, err := peer.Decode(a.SolverID); err == nil {
			out.Solvers = append(out.Solvers, p)
		}
	}
	return out, nil
}

// prune forgets the jobs that ended more than Config.Retention ago.
func (c *Node) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, j := range c.jobs {
		if j.outcome != nil && now.Sub(j.outcome.Ended) > c.cfg.Retention {
			delete(c.jobs, id)
		}
	}
}
