package node

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/core/challenge"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
)

// signedReport is an audit report of job id with findings signed by
// signer: the segments the node's beacon draws for the committed trace,
// all matching on a pass, and on a fail a mismatch at the segment that
// starts at firstBad (the rest skipped). A job the node no longer knows
// gets findings of nothing in particular.
func (p *peerNode) signedReport(id spec.JobID, solver peer.ID, pass bool, firstBad int64, signer crypto.PrivKey) *wire.AuditReport {
	t := p.h.t
	t.Helper()
	c := p.h.node
	c.mu.Lock()
	var s *spec.Spec
	var tr *wire.TraceCommit
	var beacon []byte
	if j := c.jobs[id]; j != nil {
		s, tr, beacon = j.spec, j.trace, j.beacon
	}
	c.mu.Unlock()
	f := &report.Findings{JobID: id.String(), Solver: solver.String(), TraceRoot: strings.Repeat("00", 32), Beacon: "00", Method: report.MethodReplay,
		Population: 1, Verdict: report.Pass, Segments: []report.SegmentCheck{{Segment: 0, FromStep: 0, ToStep: 1, Outcome: report.Match}}, StepsChecked: 1}
	if s != nil && tr != nil {
		required, err := report.RequiredSamples(s)
		if err != nil {
			t.Fatal(err)
		}
		N := len(tr.Entries) - 1
		picked, err := challenge.Sample(challenge.Seed(id, tr.TraceRoot, beacon), N, int(required))
		if err != nil {
			t.Fatal(err)
		}
		f.TraceRoot, f.Beacon, f.Population, f.Segments, f.StepsChecked = hex.EncodeToString(tr.TraceRoot[:]), hex.EncodeToString(beacon), int64(N), nil, 0
		f.ConfidencePPM = 990_000
		for _, seg := range picked {
			from, _ := trace.StepAt(s, int64(seg))
			to, _ := trace.StepAt(s, int64(seg)+1)
			sc := report.SegmentCheck{Segment: int64(seg), FromStep: from, ToStep: to, Outcome: report.Match}
			switch {
			case f.Verdict == report.Fail:
				sc.Outcome = report.Skipped
			case !pass && from == firstBad:
				bad := from
				f.Verdict, f.FirstBadStep, f.Reason, sc.Outcome = report.Fail, &bad, "digest mismatch", report.Mismatch
			default:
				f.StepsChecked += to - from
			}
			f.Segments = append(f.Segments, sc)
		}
	}
	key, err := wire.SigningKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := report.SignFindings(f, key)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := wire.NewAuditReport(solver, sf)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// send sends msg as the peer's report of job id.
func (p *peerNode) send(id spec.JobID, msg *wire.AuditReport) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.n.Request(ctx, p.h.cn.ID(), wire.ControlProtocol, id, msg, wire.TypeAck)
	return err
}

// TestSettledJobsReportVerifies: a settled job's report is stored when
// the job ends, verifies against the coordinator's peer ID, embeds the
// verifier's signed findings and the job's ledger movements; and findings
// signed by anyone but the assigned verifier are refused — sent by an
// unassigned peer, or relayed by the assigned one.
func TestSettledJobsReportVerifies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	sv := h.solver(1)
	v := h.verifier(nil, true, true)
	other := h.verifier(nil, true, true)
	id, s := h.post()
	sv.assigned(5 * time.Second)
	if err := sv.commit(id, s, s.Steps); err != nil {
		t.Fatal(err)
	}
	var auditor, bystander *peerNode
	for auditor == nil {
		for _, p := range []*peerNode{v, other} {
			if _, ok := p.task(10 * time.Millisecond); ok {
				auditor = p
			}
		}
	}
	bystander = v
	if auditor == v {
		bystander = other
	}
	// An unassigned peer's own, validly signed findings: refused.
	if err := bystander.report(id, sv.n.ID(), true, -1); err == nil {
		t.Fatal("a report from a verifier not assigned the audit was accepted")
	}
	// The assigned verifier relaying findings someone else signed: refused.
	err := auditor.send(id, auditor.signedReport(id, sv.n.ID(), true, -1, bystander.key))
	if err == nil || !strings.Contains(err.Error(), ErrNotYours.Error()) {
		t.Fatalf("findings signed by another peer: %v", err)
	}
	// Findings that skip a sample the beacon draws: refused.
	f := auditor.signedReport(id, sv.n.ID(), true, -1, auditor.key).Findings.Findings
	f.StepsChecked -= f.Segments[0].ToStep - f.Segments[0].FromStep
	f.Segments = f.Segments[1:]
	sk, _ := wire.SigningKey(auditor.key)
	sf, _ := report.SignFindings(&f, sk)
	short, err := wire.NewAuditReport(sv.n.ID(), sf)
	if err != nil {
		t.Fatal(err)
	}
	if err := auditor.send(id, short); err == nil || !strings.Contains(err.Error(), ErrBadReport.Error()) {
		t.Fatalf("findings missing a sample: %v", err)
	}
	if err := auditor.report(id, sv.n.ID(), true, -1); err != nil {
		t.Fatal(err)
	}
	if j := h.waitTerminal(id, 10*time.Second); j.State != lifecycle.Settled {
		t.Fatalf("job ended %s", j.State)
	}
	// The report is stored before the node announces the end.
	if _, err := h.node.AwaitOutcome(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	b, err := h.svc.Report(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := report.ParseKey(h.cn.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := report.Verify(b, pin)
	if err != nil {
		t.Fatalf("the settled job's report does not verify: %v\n%s", err, b)
	}
	if r.Outcome.State != report.StateSettled || len(r.Audits) != 1 || r.Audits[0].Verifier.PeerID != auditor.n.ID().String() ||
		len(r.Solvers) != 1 || r.Solvers[0].PeerID != sv.n.ID().String() || r.Trace == nil || r.Beacon == nil || len(r.Ledger) < 4 {
		t.Fatalf("report %s", b)
	}
	if _, _, err := report.Verify(b, mustKey(t, bystander.n.ID())); !errors.Is(err, report.ErrBadSignature) {
		t.Fatalf("verified against another key: %v", err)
	}
}

func mustKey(t *testing.T, id peer.ID) []byte {
	k, err := report.ParseKey(id.String())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCheatersReportVerifies: a job whose solver committed lies ends
// adjudicated_cheat with a report that verifies and shows the failed
// audit, the referee's ruling and the solver's slashed bond.
func TestCheatersReportVerifies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fastConfig())
	v := h.verifier(nil, true, true)
	cheater := h.solver(100_000)
	id, s := h.post()
	cheater.assigned(5 * time.Second)
	v.honest(id, s)
	if err := cheater.commit(id, s, 3); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.task(5 * time.Second); !ok {
		t.Fatal("no audit task")
	}
	if err := v.report(id, cheater.n.ID(), false, 3); err != nil {
		t.Fatal(err)
	}
	if j := h.waitTerminal(id, 10*time.Second); j.State != lifecycle.AdjudicatedCheat {
		t.Fatalf("job ended %s", j.State)
	}
	// The report is stored before the node announces the end.
	if _, err := h.node.AwaitOutcome(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	b, err := h.svc.Report(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := report.Verify(b, mustKey(t, h.cn.ID()))
	if err != nil {
		t.Fatalf("the cheater's job's report does not verify: %v\n%s", err, b)
	}
	if r.Outcome.State != report.StateAdjudicatedCheat || len(r.Disputes) != 1 || r.Disputes[0].Loser != report.LoserSolver ||
		len(r.Slashes) != 1 || r.Slashes[0].PeerID != cheater.n.ID().String() || r.Slashes[0].AmountMicroUSD <= 0 {
		t.Fatalf("report %s", b)
	}
}

// verifiedReport waits for job id's end and returns its stored report,
// verified against the coordinator's peer ID.
func (h *harness) verifiedReport(id spec.JobID) *report.Report {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if _, err := h.node.AwaitOutcome(ctx, id); err != nil {
		h.t.Fatal(err)
	}
	b, err := h.svc.Report(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	r, _, err := report.Verify(b, mustKey(h.t, h.cn.ID()))
	if err != nil {
		h.t.Fatalf("job %s's report does not verify: %v\n%s", id, err, b)
	}
	return r
}
