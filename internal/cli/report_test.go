package cli

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// expiredReport writes the signed report of a job that expired before
// any solver committed (escrow locked, then refunded) and returns its
// path and the signer's peer ID.
func expiredReport(t *testing.T) (path, signer string) {
	t.Helper()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	required, err := report.RequiredSamples(s)
	if err != nil {
		t.Fatal(err)
	}
	ds := report.Dataset{Source: s.Data.Source, TrainRoot: s.Data.Train.Root}
	if s.Data.Test != nil {
		ds.TestRoot = s.Data.Test.Root
	}
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	esc := report.EscrowAccount(id.String())
	r := &report.Report{Version: report.Version, JobID: id.String(), Spec: s, Client: "acme",
		Dataset: ds, Solvers: []report.Party{},
		Policy: report.Policy{CheatFractionPPM: s.Audit.CheatFractionPPM, ConfidencePPM: s.Audit.ConfidencePPM, RequiredSamples: required},
		Audits: []report.Audit{}, Disputes: []report.Dispute{}, Slashes: []report.Slash{},
		Ledger: []report.Movement{
			{TransferID: "a", Seq: 3, At: at, Code: "lock_client_escrow", Kind: report.Pending, Debit: "client:acme", Credit: esc, AmountMicroUSD: 7},
			{TransferID: "b", Seq: 9, At: at.Add(time.Hour), Code: "refund_client_escrow", Kind: report.VoidPending, Debit: "client:acme", Credit: esc, AmountMicroUSD: 7, PendingID: "a"},
		},
		Outcome: report.Outcome{State: report.StateExpired, Reason: "deadline passed in state posted"},
		Times:   report.Times{PostedAt: at, EndedAt: at.Add(time.Hour), IssuedAt: at.Add(time.Hour)},
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	if err := r.Sign(key); err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, report.PeerID(key.Public().(ed25519.PublicKey))
}

// TestReportVerifyAndShow: beluga report verify accepts a signed report
// pinned to its signer (by peer ID or multiaddr), says when the signer is
// not pinned, exits 1 for a tampered report or another coordinator's key;
// report show renders it.
func TestReportVerifyAndShow(t *testing.T) {
	t.Parallel()
	path, signer := expiredReport(t)
	for _, key := range []string{signer, "/ip4/127.0.0.1/tcp/4001/p2p/" + signer} {
		code, out, errs := run(t, "report", "verify", path, "--coordinator-key", key)
		if code != 0 || !strings.Contains(out, "signed by the pinned coordinator "+signer) {
			t.Fatalf("verify pinned to %s: exit %d: %s%s", key, code, out, errs)
		}
	}
	if code, out, _ := run(t, "report", "verify", path); code != 0 || !strings.Contains(out, "NOT pinned") {
		t.Fatalf("verify unpinned: exit %d: %s", code, out)
	}
	other := report.PeerID(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32)).Public().(ed25519.PublicKey))
	if code, _, errs := run(t, "report", "verify", path, "--coordinator-key", other); code != 1 || !strings.Contains(errs, "not by the pinned coordinator") {
		t.Fatalf("another coordinator's key: exit %d: %s", code, errs)
	}
	b, _ := os.ReadFile(path)
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	os.WriteFile(tampered, bytes.Replace(b, []byte(`"amount_micro_usd": 7`), []byte(`"amount_micro_usd": 6`), 1), 0o600)
	if code, _, errs := run(t, "report", "verify", tampered, "--coordinator-key", signer); code != 1 || !strings.Contains(errs, "does not verify") {
		t.Fatalf("tampered: exit %d: %s", code, errs)
	}
	if code, _, _ := run(t, "report", "verify", path, "--coordinator-key", "nonsense"); code != exitUsage {
		t.Fatalf("a bad key: exit %d", code)
	}
	code, out, errs := run(t, "report", "show", path)
	if code != 0 || !strings.Contains(out, "outcome          expired") || !strings.Contains(out, "refund_client_escrow") || !strings.Contains(out, hex.EncodeToString([]byte{})+"Signed by coordinator "+signer) {
		t.Fatalf("show: exit %d: %s%s", code, out, errs)
	}
}
