package service

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/spec"
)

// enrol issues party a verifier key, as an operator does, and deposits
// bond (> 0) into its bond account.
func enrol(t testing.TB, s *Service, party string, bond int64) {
	t.Helper()
	if _, _, err := auth.NewKeys(s.Store(), rand.Reader, s.Now).Issue(context.Background(), party, auth.RoleVerifier, 0); err != nil {
		t.Fatal(err)
	}
	if bond > 0 {
		must(s.RecordDeposit(context.Background(), Deposit{BankRef: "vbond-" + party, Account: AccountRef{KindVerifierBond, party}, AmountMicroUSD: bond}))
	}
}

func mustJobID(id string) spec.JobID { return must(spec.ParseJobID(id)) }

// auditWindow posts a job, runs it and opens its audit window.
func auditWindow(t testing.TB, s *Service, seed uint64) *Job {
	t.Helper()
	ctx := context.Background()
	must(s.RecordDeposit(ctx, Deposit{BankRef: "c", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000}))
	must(s.RecordDeposit(ctx, Deposit{BankRef: "s", Account: AccountRef{KindSolverBond, "gpu1"}, AmountMicroUSD: 100_000_000}))
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 1, TTL: time.Hour}))
	j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, seed), MaxPriceNanoUSDPerCU: 3_000_000_000}))
	for _, e := range []lifecycle.Event{lifecycle.EventStart, lifecycle.EventCommit, lifecycle.EventOpenAudit} {
		j = must(s.Advance(ctx, j.ID, e))
	}
	return j
}

// TestSettleNeedsTheBondedAuditor: settlement pays only the verifier whose
// bond is locked for the job's audit; a verifier that is not enrolled, or
// cannot cover the bond, is never assigned, and nothing changes when it
// is refused.
func TestSettleNeedsTheBondedAuditor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	j := auditWindow(t, s, 11)
	id := mustJobID(j.ID)
	enrol(t, s, "poor", 1)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "u", Account: AccountRef{KindVerifierBond, "stranger"}, AmountMicroUSD: 100_000_000}))
	before := snapshot(t, led)
	if _, err := s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "stranger", Audits: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("settled paying a verifier with no audit bond: %v", err)
	}
	if _, err := s.AssignAudit(ctx, id, "stranger"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("audit assigned to a verifier that is not enrolled: %v", err)
	}
	if _, err := s.AssignAudit(ctx, id, "poor"); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("audit assigned to a verifier that cannot cover the bond: %v", err)
	}
	if _, err := s.Dispute(ctx, j.ID, "stranger", "gpu1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("dispute by a verifier with no audit bond: %v", err)
	}
	if after := snapshot(t, led); after != before {
		t.Fatalf("a refused request changed the ledger")
	}
	enrol(t, s, "ver1", 100_000_000)
	j = must(s.AssignAudit(ctx, id, "ver1"))
	bond := j.Auditors[0].BondMicroUSD
	if bond < s.cfg.policy.VerifierBondMicroUSD {
		t.Fatalf("bond %d below the policy's", bond)
	}
	a := must(led.Account(ctx, AccountRef{KindVerifierBond, "ver1"}.ID()))
	if a.DebitsPendingMicroUSD != bond {
		t.Fatalf("verifier bond reserved %d, want %d", a.DebitsPendingMicroUSD, bond)
	}
	j = must(s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 1}}))
	if j.State != lifecycle.Settled || !j.Auditors[0].Released {
		t.Fatalf("settled %s, auditor %+v", j.State, j.Auditors)
	}
	a = must(led.Account(ctx, AccountRef{KindVerifierBond, "ver1"}.ID()))
	if a.DebitsPendingMicroUSD != 0 || a.CreditBalanceMicroUSD() != 100_000_000 {
		t.Fatalf("verifier bond not released: %+v", a.Balances)
	}
	checkAll(t, s, led)
}

// TestReassignReleasesThePreviousAuditor: a second assignment voids the
// first auditor's bond; only the current auditor can be paid.
func TestReassignReleasesThePreviousAuditor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	j := auditWindow(t, s, 12)
	id := mustJobID(j.ID)
	enrol(t, s, "ver1", 100_000_000)
	enrol(t, s, "ver2", 100_000_000)
	must(s.AssignAudit(ctx, id, "ver1"))
	j = must(s.AssignAudit(ctx, id, "ver2"))
	if !j.Auditors[0].Released || j.Auditors[1].Released {
		t.Fatalf("auditors %+v", j.Auditors)
	}
	if a := must(led.Account(ctx, AccountRef{KindVerifierBond, "ver1"}.ID())); a.DebitsPendingMicroUSD != 0 {
		t.Fatalf("the replaced auditor's bond is still reserved: %+v", a.Balances)
	}
	if _, err := s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("paid the replaced auditor: %v", err)
	}
	must(s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver2", Audits: 1}}))
	checkAll(t, s, led)
}

// TestExpireReleasesEverything: a job expires from any state that is not
// terminal — here in dispute, with the solver's and the auditor's bonds
// reserved — and the escrow and every bond are released exactly once.
func TestExpireReleasesEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	j := auditWindow(t, s, 13)
	id := mustJobID(j.ID)
	enrol(t, s, "ver1", 100_000_000)
	must(s.AssignAudit(ctx, id, "ver1"))
	must(s.Dispute(ctx, j.ID, "ver1", "gpu1"))
	j = must(s.Expire(ctx, id))
	if j.State != lifecycle.Expired {
		t.Fatal(j.State)
	}
	for _, r := range []AccountRef{{KindVerifierBond, "ver1"}, {KindSolverBond, "gpu1"}, {KindClientFunds, "acme"}} {
		a := must(led.Account(ctx, r.ID()))
		if a.DebitsPendingMicroUSD != 0 {
			t.Errorf("%s still reserved %d", r, a.DebitsPendingMicroUSD)
		}
	}
	if got := balance(t, led, AccountRef{KindClientFunds, "acme"}); got != 1_000_000_000 {
		t.Errorf("client holds %d, want its deposit", got)
	}
	if _, err := s.Expire(ctx, id); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("expired twice: %v", err)
	}
	checkAll(t, s, led)
	// A posted job nobody takes expires too.
	j2 := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 14), MaxPriceNanoUSDPerCU: 1_000}))
	if j2 = must(s.Expire(ctx, mustJobID(j2.ID))); j2.State != lifecycle.Expired {
		t.Fatal(j2.State)
	}
	checkAll(t, s, led)
}
