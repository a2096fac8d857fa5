package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
)

// record is what the node keeps of a job beside the service's record, in
// the service's store (key recordKey): what it needs to audit the job
// after a restart.
type record struct {
	Solvers []peer.ID
	Trace   *wire.TraceCommit
	Beacon  []byte
	// Report and Verifier: the accusation of an open dispute.
	Report   *wire.AuditReport
	Verifier peer.ID
}

// stored is a record as stored: trace entries packed (8-byte step,
// 32-byte digest), so that the largest trace is a few megabytes.
type stored struct {
	Solvers  []peer.ID         `json:"solvers"`
	Steps    int64             `json:"steps"`
	Root     []byte            `json:"root"`
	Final    []byte            `json:"final"`
	Entries  []byte            `json:"entries"`
	ZK       []byte            `json:"zk,omitempty"`
	Beacon   []byte            `json:"beacon"`
	Report   *wire.AuditReport `json:"report,omitempty"`
	Verifier peer.ID           `json:"verifier,omitempty"`
}

func recordKey(id spec.JobID) string { return "node/job/" + id.String() }

func pack(es []wire.TraceEntry) []byte {
	b := make([]byte, 0, len(es)*40)
	for _, e := range es {
		b = binary.BigEndian.AppendUint64(b, uint64(e.Step))
		b = append(b, e.Digest[:]...)
	}
	return b
}

func unpack(b []byte) ([]wire.TraceEntry, error) {
	if len(b)%40 != 0 {
		return nil, fmt.Errorf("packed trace of %d bytes", len(b))
	}
	out := make([]wire.TraceEntry, len(b)/40)
	for i := range out {
		out[i].Step = int64(binary.BigEndian.Uint64(b[i*40:]))
		copy(out[i].Digest[:], b[i*40+8:])
	}
	return out, nil
}

// saveRecord stores r for job id.
func (c *Node) saveRecord(id spec.JobID, r *record) error {
	s := stored{Solvers: r.Solvers, Beacon: r.Beacon, Report: r.Report, Verifier: r.Verifier}
	if t := r.Trace; t != nil {
		s.Steps, s.Root, s.Final, s.Entries, s.ZK = t.Steps, t.TraceRoot[:], t.FinalDigest[:], pack(t.Entries), pack(t.ZKEntries)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := c.svc.Store().PutRaw(recordKey(id), b); err != nil {
		return fmt.Errorf("store the record of job %s: %w", short(id), err)
	}
	return nil
}

// loadRecord returns job id's record, or nil.
func (c *Node) loadRecord(id spec.JobID) (*record, error) {
	b, ok, err := c.svc.Store().GetRaw(recordKey(id))
	if err != nil || !ok || string(b) == "null" {
		return nil, err
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("record of job %s: %w", short(id), err)
	}
	r := &record{Solvers: s.Solvers, Beacon: s.Beacon, Report: s.Report, Verifier: s.Verifier}
	if len(s.Root) > 0 {
		t := &wire.TraceCommit{Steps: s.Steps}
		copy(t.TraceRoot[:], s.Root)
		copy(t.FinalDigest[:], s.Final)
		if t.Entries, err = unpack(s.Entries); err != nil {
			return nil, err
		}
		if t.ZKEntries, err = unpack(s.ZK); err != nil {
			return nil, err
		}
		if len(t.ZKEntries) == 0 {
			t.ZKEntries = nil
		}
		r.Trace = t
	}
	return r, nil
}

// saveDispute adds an open dispute to job id's record.
func (c *Node) saveDispute(id spec.JobID, rep *wire.AuditReport, verifier peer.ID) error {
	r, err := c.loadRecord(id)
	if err != nil || r == nil {
		return fmt.Errorf("no record of job %s to add its dispute to: %v", short(id), err)
	}
	r.Report, r.Verifier = rep, verifier
	return c.saveRecord(id, r)
}

// forgetDispute removes the dispute from job id's record.
func (c *Node) forgetDispute(id spec.JobID) {
	r, err := c.loadRecord(id)
	if err != nil || r == nil {
		return
	}
	r.Report, r.Verifier = nil, ""
	if err := c.saveRecord(id, r); err != nil {
		c.log.Warn("forgetting the dispute", jobAttr(id), "err", err)
	}
}

// forget drops job id's record once the job has ended.
func (c *Node) forget(id spec.JobID) {
	if err := c.svc.Store().PutRawTTL(recordKey(id), []byte("null"), time.Second); err != nil {
		c.log.Warn("dropping the record", jobAttr(id), "err", err)
	}
}

// recover rebuilds the jobs in flight from the service (and the records
// beside them): a running job waits HeartbeatTimeout for its solver to
// come back, then goes back to the market; committed jobs open their audits,
// audits and disputes resume; deadlines run from each job's posting, so a
// job whose deadline passed expires at the first tick.
func (c *Node) recover(ctx context.Context) error {
	recs, err := c.svc.Jobs(ctx, "")
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.State.Terminal() {
			continue
		}
		s, err := spec.Decode(rec.Spec)
		if err != nil {
			return fmt.Errorf("job %s: %w", rec.ID, err)
		}
		id, err := spec.ParseJobID(rec.ID)
		if err != nil {
			return err
		}
		j := c.newJob(id, s, rec.Spec, posted(rec))
		r, err := c.loadRecord(id)
		if err != nil {
			return err
		}
		if r != nil {
			j.solvers, j.trace, j.beacon = r.Solvers, r.Trace, r.Beacon
			if len(j.solvers) > 0 {
				j.solver = j.solvers[len(j.solvers)-1]
			}
		}
		st := rec.State
		switch {
		case (st == lifecycle.Matched || st == lifecycle.Running || st == lifecycle.Committed) && j.trace != nil:
			// The trace was stored; the audit had not opened.
			if err := c.openAudit(ctx, j, j.trace.Steps); err != nil {
				return err
			}
		case st == lifecycle.Running && j.solver != "":
			// Its solver is likely still training: it has HeartbeatTimeout
			// from now to say hello again and heartbeat, and goes on as if
			// nothing happened; if it does not, the clock takes the job
			// from it (silent) and it resumes elsewhere. (Sending the job
			// back to the market at once gave it to another solver while
			// the first still ran it, and the first's announcements were
			// refused until its peer was cut off.)
			j.lastBeat = time.Now()
		case st == lifecycle.Matched || st == lifecycle.Running:
			if _, err := c.svc.Vanish(ctx, rec.ID); err != nil {
				return err
			}
			j.solver = ""
		case st == lifecycle.AdjudicatedFalseAccusation:
			if _, err := c.svc.ResumeAudit(ctx, id); err != nil {
				return err
			}
		case st == lifecycle.Disputed && r != nil && r.Report != nil:
			j.disputed, j.auditor = r.Report, r.Verifier
		}
		c.jobs[id] = j
		c.log.Info("job recovered", jobAttr(id), "state", st.String(), "trace", j.trace != nil)
	}
	return nil
}
