package wire

import (
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/report"
)

// sampleReport is an audit report with findings signed by the key of seed.
func sampleReport(t testing.TB, solver peer.ID, seed byte) *AuditReport {
	t.Helper()
	k, _ := key(t, seed)
	sk, err := SigningKey(k)
	if err != nil {
		t.Fatal(err)
	}
	first := int64(4)
	f := &report.Findings{JobID: strings.Repeat("01", 32), Solver: solver.String(), TraceRoot: strings.Repeat("ab", 32), Beacon: "62",
		Method: report.MethodReplay, Population: 10, Verdict: report.Fail, FirstBadStep: &first, Reason: "digest", ConfidencePPM: 990000,
		StepsChecked: 4, Segments: []report.SegmentCheck{{Segment: 0, FromStep: 0, ToStep: 4, Outcome: report.Match},
			{Segment: 1, FromStep: 4, ToStep: 8, Outcome: report.Mismatch}, {Segment: 5, FromStep: 20, ToStep: 24, Outcome: report.Skipped}}}
	sf, err := report.SignFindings(f, sk)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewAuditReport(solver, sf)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAuditReportCarriesSignedFindings: the findings cross the wire
// signed by the sender's key, and a report whose summary contradicts them,
// or that has none, does not decode.
func TestAuditReportCarriesSignedFindings(t *testing.T) {
	t.Parallel()
	k, id := key(t, 1)
	_, solver := key(t, 9)
	job := [32]byte{1}
	open := func(m *AuditReport) (*AuditReport, error) {
		e, err := Seal(k, job, 1, m)
		if err != nil {
			t.Fatal(err)
		}
		env, err := Open(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(env)
		if err != nil {
			return nil, err
		}
		return got.(*AuditReport), nil
	}
	got, err := open(sampleReport(t, solver, 1))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := got.Findings.Verify()
	if err != nil || report.PeerID(signer) != id.String() {
		t.Fatalf("findings signed by %v: %v", signer, err)
	}
	lying := sampleReport(t, solver, 1)
	lying.Pass, lying.FirstBadStep = true, -1
	if _, err := open(lying); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a summary contradicting the findings: %v", err)
	}
	bare := &AuditReport{Solver: solver, Pass: true, FirstBadStep: -1}
	if _, err := open(bare); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a report without findings: %v", err)
	}
}
