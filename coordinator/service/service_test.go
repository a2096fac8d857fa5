package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/spec"
)

func TestSettleHappyPath(t *testing.T) {
	ctx := context.Background()
	s, led, clk := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "b1", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000}))
	// A replayed deposit is a no-op; the same ref with another amount conflicts.
	if r := must(s.RecordDeposit(ctx, Deposit{BankRef: "b1", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000})); !r.Existed {
		t.Fatal("replayed deposit not reported as existing")
	}
	if _, err := s.RecordDeposit(ctx, Deposit{BankRef: "b1", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 5}); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting deposit: %v", err)
	}
	must(s.RecordDeposit(ctx, Deposit{BankRef: "b2", Account: AccountRef{KindSolverBond, "gpu1"}, AmountMicroUSD: 100_000_000}))
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 2, TTL: time.Hour}))
	j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 1), MaxPriceNanoUSDPerCU: 3_000_000_000}))
	if j.State != lifecycle.Matched || j.Solvers[0].SolverID != "gpu1" || j.PriceNanoUSDPerCU != 2_000_000_000 {
		t.Fatalf("job not matched at the ask price: %+v", j)
	}
	// Posting again is idempotent.
	if j2 := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 1), MaxPriceNanoUSDPerCU: 3_000_000_000})); j2.Seq != j.Seq {
		t.Fatal("re-post moved the job")
	}
	must(s.Advance(ctx, j.ID, lifecycle.EventStart))
	must(s.Checkpoint(ctx, j.ID, 100))
	must(s.Advance(ctx, j.ID, lifecycle.EventCommit))
	must(s.Advance(ctx, j.ID, lifecycle.EventOpenAudit))
	enrol(t, s, "ver1", 100_000_000)
	must(s.AssignAudit(ctx, mustJobID(j.ID), "ver1"))
	if _, err := s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 2}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("two audits paid from a budget of one: %v", err)
	}
	j = must(s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 1}}))
	if j.State != lifecycle.Settled {
		t.Fatal(j.State)
	}
	vpay := wantAuditPay(t, j)
	cost := j.PriceNanoUSDPerCU * j.CU / 1000
	fee := cost / 20
	if got := balance(t, led, AccountRef{KindSolverEarnings, "gpu1"}); got != cost {
		t.Errorf("solver earnings %d, want %d", got, cost)
	}
	if got := balance(t, led, AccountRef{KindVerifierEarnings, "ver1"}); got != vpay {
		t.Errorf("verifier earnings %d", got)
	}
	if got := balance(t, led, AccountRef{Kind: KindPlatformFees}); got != fee {
		t.Errorf("fees %d, want %d", got, fee)
	}
	if got := balance(t, led, AccountRef{KindClientFunds, "acme"}); got != 1_000_000_000-cost-fee-vpay {
		t.Errorf("client funds %d", got)
	}
	a := must(led.Account(ctx, AccountRef{KindSolverBond, "gpu1"}.ID()))
	if a.DebitsPendingMicroUSD != 0 || a.CreditBalanceMicroUSD() != 100_000_000 {
		t.Errorf("bond not released: %+v", a.Balances)
	}
	checkAll(t, s, led)

	// Payouts: the period must have ended; then one run, idempotent.
	noErr(t, s.SetBankDetails(ctx, AccountRef{KindSolverEarnings, "gpu1"}, bank("Ada Lovelace")))
	noErr(t, s.SetBankDetails(ctx, AccountRef{KindVerifierEarnings, "ver1"}, bank("Alan Turing")))
	if _, err := s.RunPayouts(ctx, "2026-11-15"); !errors.Is(err, ErrPeriodNotDue) {
		t.Fatalf("early run: %v", err)
	}
	clk.add(14 * 24 * time.Hour)
	r1 := must(s.RunPayouts(ctx, "2026-11-15"))
	r2 := must(s.RunPayouts(ctx, "2026-11-15"))
	if string(r1.ACH) != string(r2.ACH) || len(r1.Payees) != 2 {
		t.Fatalf("re-run differs or wrong payees: %+v", r1.Payees)
	}
	if again := must(s.RebuildACH(ctx, "2026-11-15")); string(again) != string(r1.ACH) {
		t.Fatal("rebuilt ACH differs")
	}
	sum := must(payout.ParseACH(r1.ACH))
	if got := inTransitFor(t, led, "2026-11-15"); sum.TotalCreditCents*payout.MicroUSDPerCent != got {
		t.Fatalf("ACH total %d cents, ledger in transit %d µUSD", sum.TotalCreditCents, got)
	}
	if sum.CreditCentsByID["Sgpu1"] != cost/payout.MicroUSDPerCent {
		t.Errorf("solver paid %d cents", sum.CreditCentsByID["Sgpu1"])
	}
	st := must(s.Statement(ctx, AccountRef{KindSolverEarnings, "gpu1"}, ""))
	if len(st.Lines) != 2 || st.ClosingBalanceMicroUSD != cost%payout.MicroUSDPerCent {
		t.Errorf("statement: %+v", st)
	}
	checkAll(t, s, led)
}

// inTransitFor sums the payout transfers into payouts in transit tagged
// with the period.
func inTransitFor(t testing.TB, l ledger.Ledger, period string) int64 {
	var total int64
	var after ledger.TransferID
	for {
		ts := must(l.AccountTransfers(context.Background(), AccountRef{Kind: KindPayoutsInTransit}.ID(), after, 1000))
		for _, tr := range ts {
			if tr.Code == CodePayout && partyOf(ledger.Account{UserData: tr.UserData}) == period {
				total += tr.AmountMicroUSD
			}
		}
		if len(ts) < 1000 {
			return total
		}
		after = ts[len(ts)-1].ID
	}
}

func TestSlashAndResume(t *testing.T) {
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "c", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000}))
	for _, p := range []string{"gpu1", "gpu2"} {
		must(s.RecordDeposit(ctx, Deposit{BankRef: p, Account: AccountRef{KindSolverBond, p}, AmountMicroUSD: 100_000_000}))
	}
	must(s.RecordDeposit(ctx, Deposit{BankRef: "v", Account: AccountRef{KindVerifierBond, "ver1"}, AmountMicroUSD: 100_000_000}))
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 3_000_000_000, Capacity: 1, TTL: time.Hour}))
	j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 2)}))
	must(s.Advance(ctx, j.ID, lifecycle.EventStart))
	must(s.Checkpoint(ctx, j.ID, 1000))
	j = must(s.Vanish(ctx, j.ID))
	if j.State != lifecycle.Resumable {
		t.Fatal(j.State)
	}
	must(s.PostAsk(ctx, Ask{SolverID: "gpu2", PriceNanoUSDPerCU: 1_000_000_000, Capacity: 1, TTL: time.Hour}))
	j = must(s.Job(ctx, must(spec.ParseJobID(j.ID))))
	if j.State != lifecycle.Matched || len(j.Solvers) != 2 {
		t.Fatalf("not re-matched: %+v", j)
	}
	must(s.Advance(ctx, j.ID, lifecycle.EventStart))
	must(s.Advance(ctx, j.ID, lifecycle.EventCommit))
	must(s.Advance(ctx, j.ID, lifecycle.EventOpenAudit))
	// A false accusation pays the accused solver the verifier's bond.
	enrol(t, s, "ver1", 0)
	must(s.AssignAudit(ctx, mustJobID(j.ID), "ver1"))
	must(s.Dispute(ctx, j.ID, "ver1", "gpu2"))
	j = must(s.SlashVerifier(ctx, j.ID))
	if j.State != lifecycle.AuditWindow || balance(t, led, AccountRef{KindSolverEarnings, "gpu2"}) != s.cfg.policy.VerifierBondMicroUSD {
		t.Fatalf("false accusation: %s", j.State)
	}
	checkAll(t, s, led)
	// A proven cheat slashes gpu2's bond: bounty to the verifier, the rest
	// and the whole escrow to the client; gpu1's bond is released.
	must(s.AssignAudit(ctx, mustJobID(j.ID), "ver1"))
	must(s.Dispute(ctx, j.ID, "ver1", "gpu2"))
	j = must(s.SlashSolver(ctx, j.ID))
	bond := j.Solvers[1].BondMicroUSD
	if got := balance(t, led, AccountRef{KindSolverBond, "gpu2"}); got != 100_000_000-bond {
		t.Errorf("gpu2 bond %d", got)
	}
	if got := balance(t, led, AccountRef{KindVerifierEarnings, "ver1"}); got != bond/2 {
		t.Errorf("bounty %d", got)
	}
	if got := balance(t, led, AccountRef{KindClientFunds, "acme"}); got != 1_000_000_000+bond-bond/2 {
		t.Errorf("client %d", got)
	}
	checkAll(t, s, led)
}

func TestProRataSettlement(t *testing.T) {
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "c", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000}))
	for _, p := range []string{"gpu1", "gpu2"} {
		must(s.RecordDeposit(ctx, Deposit{BankRef: p, Account: AccountRef{KindSolverBond, p}, AmountMicroUSD: 100_000_000}))
	}
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 3_000_001_000, Capacity: 1, TTL: time.Hour}))
	j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 3), MaxPriceNanoUSDPerCU: 5_000_000_000}))
	must(s.Advance(ctx, j.ID, lifecycle.EventStart))
	must(s.Checkpoint(ctx, j.ID, j.Steps/3))
	must(s.Vanish(ctx, j.ID))
	must(s.PostAsk(ctx, Ask{SolverID: "gpu2", PriceNanoUSDPerCU: 1_000, Capacity: 1, TTL: time.Hour}))
	must(s.Advance(ctx, j.ID, lifecycle.EventStart))
	must(s.Advance(ctx, j.ID, lifecycle.EventCommit))
	must(s.Advance(ctx, j.ID, lifecycle.EventOpenAudit))
	j = must(s.Settle(ctx, j.ID, nil))
	cost := j.PriceNanoUSDPerCU * j.CU / 1000
	want := must(lifecycle.ProRata(cost, []int64{j.Steps / 3, j.Steps - j.Steps/3}))
	if a, b := balance(t, led, AccountRef{KindSolverEarnings, "gpu1"}), balance(t, led, AccountRef{KindSolverEarnings, "gpu2"}); a != want[0] || b != want[1] {
		t.Fatalf("pro rata %d %d, want %v", a, b, want)
	}
	checkAll(t, s, led)
}

func TestRejectsChangeNothing(t *testing.T) {
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "c", Account: AccountRef{KindClientFunds, "poor"}, AmountMicroUSD: 1}))
	before := snapshot(t, led)
	for name, err := range map[string]error{
		"no funds":            second(s.PostJob(ctx, PostJobRequest{ClientID: "poor", Spec: specJSON(t, 4), MaxPriceNanoUSDPerCU: 1000_000})),
		"bad spec":            second(s.PostJob(ctx, PostJobRequest{ClientID: "poor", Spec: []byte(`{}`)})),
		"neg price":           second(s.PostJob(ctx, PostJobRequest{ClientID: "poor", Spec: specJSON(t, 4), MaxPriceNanoUSDPerCU: -1})),
		"zero deposit":        second(s.RecordDeposit(ctx, Deposit{BankRef: "z", Account: AccountRef{KindClientFunds, "x"}})),
		"bad party":           second(s.RecordDeposit(ctx, Deposit{BankRef: "z", Account: AccountRef{KindClientFunds, "a b"}, AmountMicroUSD: 1})),
		"deposit to earnings": second(s.RecordDeposit(ctx, Deposit{BankRef: "z", Account: AccountRef{KindSolverEarnings, "x"}, AmountMicroUSD: 1})),
		"unknown job":         second(s.Settle(ctx, "00000000000000000000000000000000000000000000000000000000000000aa", nil)),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if after := snapshot(t, led); after != before {
		t.Fatalf("a rejected request changed the ledger: %s → %s", before, after)
	}
	if _, err := s.Job(ctx, spec.JobID{31: 0xaa}); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	checkAll(t, s, led)
}

func second[T any](_ T, err error) error { return err }
