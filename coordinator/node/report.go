package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
)

// auditLog is what the node keeps of a job's audits until the job ends,
// in the service's job record (service.SetAudit): every verifier's signed
// findings as received, and the disputes refereed.
type auditLog = report.Log

// loadAuditLog returns job id's audit log (empty if none).
func (c *Node) loadAuditLog(ctx context.Context, id spec.JobID) (*auditLog, error) {
	rec, err := c.svc.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	l := &auditLog{Audits: []report.Audit{}, Disputes: []report.Dispute{}}
	if len(rec.Audit) > 0 {
		if err := json.Unmarshal(rec.Audit, l); err != nil {
			return nil, fmt.Errorf("audit log of job %s: %w", short(id), err)
		}
	}
	return l, nil
}

// logAudit adds to job id's audit log.
func (c *Node) logAudit(ctx context.Context, id spec.JobID, add func(l *auditLog)) {
	l, err := c.loadAuditLog(ctx, id)
	if err == nil {
		add(l)
		var b []byte
		if b, err = json.Marshal(l); err == nil {
			err = c.svc.SetAudit(ctx, id.String(), b)
		}
	}
	if err != nil {
		c.log.Warn("storing the audit log: the job's report will lack it", jobAttr(id), "err", err)
	}
}

// checkFindings checks a report's findings: signed by the sender (the
// assigned verifier), and an audit of the committed run with the beacon's
// samples, as many as the job's policy requires (report.CheckAgainst).
func checkFindings(sender peer.ID, r *wire.AuditReport, s *spec.Spec, t *wire.TraceCommit, beacon []byte) error {
	if r.Findings == nil {
		return fmt.Errorf("%w: no signed findings", ErrBadReport)
	}
	key, err := r.Findings.Verify()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotYours, err)
	}
	if signer := report.PeerID(key); signer != sender.String() {
		return fmt.Errorf("%w: findings signed by %s, not by the sender %s", ErrNotYours, signer, sender)
	}
	if t == nil {
		return fmt.Errorf("%w: no committed trace to audit", ErrBadReport)
	}
	zroot, err := zkRoot(s, t)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	required, err := report.RequiredSamples(s)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	if err := r.Findings.Findings.CheckAgainst(s, t.TraceRoot, zroot, beacon, required); err != nil {
		return fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	return nil
}

// zkRoot is a confidential job's committed zk trace root (zero for a
// public job).
func zkRoot(s *spec.Spec, t *wire.TraceCommit) ([32]byte, error) {
	if !s.Audit.Confidential {
		return [32]byte{}, nil
	}
	z, err := zkchallenge.ZKTraceOf(s, wire.ZKEntries(t.ZKEntries))
	if err != nil {
		return [32]byte{}, err
	}
	return z.Root(), nil
}

// ending is what the report of a job needs from the node's memory, taken
// as the job ends.
type ending struct {
	spec    *spec.Spec
	trace   *wire.TraceCommit
	beacon  []byte
	solvers []peer.ID
	slashed []peer.ID
	out     Outcome
}

// issueReport assembles job e's audit report from the service's record,
// its audit log and its ledger movements, signs it with the coordinator's
// libp2p key and stores it (service.SetReport), where the API serves it.
func (c *Node) issueReport(ctx context.Context, e *ending) {
	id := e.out.Job
	r, err := c.buildReport(ctx, e)
	if err == nil {
		err = c.signAndStore(ctx, id, r)
	}
	if err != nil {
		c.log.Error("no audit report for the job", jobAttr(id), "err", err)
		return
	}
	c.log.Info("audit report issued", jobAttr(id), "state", r.Outcome.State, "audits", len(r.Audits), "ledger_lines", len(r.Ledger))
}

func (c *Node) signAndStore(ctx context.Context, id spec.JobID, r *report.Report) error {
	key, err := wire.SigningKey(c.P2P.Host.Peerstore().PrivKey(c.P2P.ID()))
	if err != nil {
		return err
	}
	if err := r.Sign(key); err != nil {
		return err
	}
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	if err := c.svc.SetReport(ctx, id, b); err != nil {
		return err
	}
	// The node checks its own report as a third party would, off the
	// caller's path (end holds the node's lock): a report that does not
	// verify is a bug worth an ERROR, and is served all the same, so that
	// the client and the operator see what is wrong with it.
	c.spawn(func(context.Context) {
		if _, _, err := report.Verify(b, key.Public().(ed25519.PublicKey)); err != nil {
			c.log.Error("the job's audit report does not verify", jobAttr(id), "err", err)
		}
	})
	return nil
}

func (c *Node) buildReport(ctx context.Context, e *ending) (*report.Report, error) {
	id, s := e.out.Job, e.spec
	rec, err := c.svc.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	l, err := c.loadAuditLog(ctx, id)
	if err != nil {
		return nil, err
	}
	ms, err := c.svc.JobMovements(ctx, id)
	if err != nil {
		return nil, err
	}
	required, err := report.RequiredSamples(s)
	if err != nil {
		return nil, err
	}
	test := ""
	if s.Data.Test != nil {
		test = s.Data.Test.Root
	}
	r := &report.Report{
		Version: report.Version, JobID: id.String(), Spec: s, Client: rec.ClientID, Confidential: s.Audit.Confidential,
		Dataset: report.Dataset{Source: s.Data.Source, TrainRoot: s.Data.Train.Root, TestRoot: test},
		Solvers: []report.Party{},
		Policy:  report.Policy{CheatFractionPPM: s.Audit.CheatFractionPPM, ConfidencePPM: s.Audit.ConfidencePPM, RequiredSamples: required},
		Audits:  l.Audits, Disputes: l.Disputes, Slashes: []report.Slash{}, Ledger: ms,
		Outcome: report.Outcome{State: e.out.State.String(), Verdict: e.out.Verdict.String(), Reason: e.out.Reason},
	}
	if r.Ledger == nil {
		r.Ledger = []report.Movement{}
	}
	peerOf := func(role wire.Role, party string, among []peer.ID) string {
		for _, p := range among {
			if PartyID(role, p) == party {
				return p.String()
			}
		}
		return ""
	}
	for _, a := range rec.Solvers {
		if p := peerOf(wire.RoleSolver, a.SolverID, e.solvers); p != "" {
			r.Solvers = append(r.Solvers, report.Party{PeerID: p, Party: a.SolverID, Steps: a.Steps})
		}
	}
	// Who may have been slashed: the node's memory of it, and the parties
	// of the disputes logged (which survive a restart).
	known := append([]peer.ID(nil), e.slashed...)
	for _, d := range l.Disputes {
		for _, s := range []string{d.Solver, d.Verifier} {
			if p, err := peer.Decode(s); err == nil {
				known = append(known, p)
			}
		}
	}
	for _, m := range ms {
		role, bond := "", ""
		switch {
		case m.Code == lifecycle.SlashSolverBondToClient.String() && m.Kind == report.PostPending:
			role, bond = report.LoserSolver, "solver_bond:"
		case m.Code == lifecycle.SlashVerifierBondToSolver.String() && m.Kind == report.PostPending:
			role, bond = report.LoserVerifier, "verifier_bond:"
		default:
			continue
		}
		wr := wire.RoleSolver
		if role == report.LoserVerifier {
			wr = wire.RoleVerifier
		}
		if p := peerOf(wr, strings.TrimPrefix(m.Debit, bond), known); p != "" {
			r.Slashes = append(r.Slashes, report.Slash{Role: role, PeerID: p, AmountMicroUSD: m.AmountMicroUSD})
		}
	}
	if n := len(r.Audits); n > 0 && e.out.Verdict != VerdictNone {
		r.Outcome.ConfidencePPM = r.Audits[n-1].Signed.Findings.ConfidencePPM
	}
	// Times, by the service's clock.
	var committed, opened time.Time
	for _, h := range rec.History {
		switch h.Event {
		case lifecycle.EventCommit.String():
			committed = h.At
		case lifecycle.EventOpenAudit.String():
			opened = h.At
		}
	}
	if len(rec.History) > 0 {
		r.Times.PostedAt = rec.History[0].At.UTC()
		r.Times.EndedAt = rec.History[len(rec.History)-1].At.UTC()
	}
	r.Times.IssuedAt = c.svc.Now().UTC()
	if r.Times.IssuedAt.Before(r.Times.EndedAt) {
		r.Times.IssuedAt = r.Times.EndedAt
	}
	if t := e.trace; t != nil {
		tr := wire.Trace(id, t.Entries)
		proof, err := tr.Prove(len(tr.Entries) - 1)
		if err != nil {
			return nil, err
		}
		rt := &report.Trace{Root: hex.EncodeToString(t.TraceRoot[:]), Steps: t.Steps, DigestInterval: s.DigestInterval, Entries: int64(len(t.Entries)),
			FinalDigest: hex.EncodeToString(tr.Entries[len(tr.Entries)-1].Digest[:]), FinalProof: []string{}}
		for _, d := range proof.Siblings {
			rt.FinalProof = append(rt.FinalProof, hex.EncodeToString(d[:]))
		}
		if s.Audit.Confidential {
			z, err := zkRoot(s, t)
			if err != nil {
				return nil, err
			}
			rt.ZKRoot = hex.EncodeToString(z[:])
		}
		r.Trace = rt
		if !committed.IsZero() {
			at := committed.UTC()
			r.Times.CommittedAt = &at
		}
		if len(e.beacon) > 0 {
			if opened.IsZero() {
				opened = committed
			}
			r.Beacon = &report.Beacon{Value: hex.EncodeToString(e.beacon), Source: report.BeaconSource, DrawnAt: opened.UTC()}
		}
	}
	return r, nil
}
