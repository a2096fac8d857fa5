package wire

import (
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/report"
)

// SigningKey returns the ed25519 key behind a libp2p key, with which a
// verifier signs its findings and the coordinator its reports: the
// signer's peer ID then names the key that checks them
// (report.PeerID).
func SigningKey(k crypto.PrivKey) (ed25519.PrivateKey, error) {
	if k == nil || k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("wire: reports are signed with ed25519 keys only")
	}
	raw, err := k.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("wire: ed25519 key: %v", err)
	}
	return ed25519.PrivateKey(raw), nil
}

// NewAuditReport is a verifier's report carrying its signed findings,
// with the summary fields filled in from them.
func NewAuditReport(solver peer.ID, sf *report.SignedFindings) (*AuditReport, error) {
	raw, err := sf.Encode()
	if err != nil {
		return nil, err
	}
	f := &sf.Findings
	m := &AuditReport{Solver: solver, Pass: f.Verdict == report.Pass, StepsChecked: f.StepsChecked, FirstBadStep: -1,
		ConfidencePPM: uint32(f.ConfidencePPM), Reason: f.Reason, Findings: sf, raw: raw}
	if f.FirstBadStep != nil {
		m.FirstBadStep = *f.FirstBadStep
	}
	return m, nil
}

// findingsBytes is what the report's findings field carries.
func (m *AuditReport) findingsBytes() []byte {
	if m.raw != nil || m.Findings == nil {
		return m.raw
	}
	b, _ := m.Findings.Encode() // too large: sent empty, and refused
	return b
}

// checkFindings decodes a report's findings and checks that the summary
// fields say what they say.
func checkFindings(m *AuditReport, raw []byte) error {
	if len(raw) == 0 {
		return fmt.Errorf("no signed findings")
	}
	sf, err := report.DecodeSignedFindings(raw)
	if err != nil {
		return err
	}
	f := &sf.Findings
	first := int64(-1)
	if f.FirstBadStep != nil {
		first = *f.FirstBadStep
	}
	if f.Solver != m.Solver.String() || (f.Verdict == report.Pass) != m.Pass || f.StepsChecked != m.StepsChecked || first != m.FirstBadStep ||
		f.ConfidencePPM != int64(m.ConfidencePPM) || f.Reason != m.Reason {
		return fmt.Errorf("the summary contradicts the signed findings")
	}
	m.Findings, m.raw = sf, raw
	return nil
}
