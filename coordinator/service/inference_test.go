package service

import (
	"context"
	"errors"
	"testing"
)

// TestInferenceBilling: a request's hold reserves the client's funds;
// settling posts the actual cost once (the rest released, the solver paid
// its share, the fee kept) however often it is retried; a voided hold costs
// nothing and cannot be settled; a hold the client cannot cover changes
// nothing; the ledger balances throughout.
func TestInferenceBilling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindClientFunds, Party: "acme"}, AmountMicroUSD: 10_000, BankRef: "w1"}))
	client := AccountRef{Kind: KindClientFunds, Party: "acme"}
	avail := func() int64 {
		a, err := led.Account(ctx, client.ID())
		noErr(t, err)
		return a.CreditBalanceMicroUSD() - a.DebitsPendingMicroUSD
	}
	noErr(t, s.HoldInference(ctx, "acme", "req-1", 4_000))
	noErr(t, s.HoldInference(ctx, "acme", "req-1", 4_000)) // a retry: no second hold
	if got := avail(); got != 6_000 {
		t.Fatalf("after the hold: %d µ$ available, want 6000", got)
	}
	for range 3 {
		noErr(t, s.SettleInference(ctx, "req-1", "s1", 1_000))
	}
	if got := balance(t, led, client); got != 9_000 || avail() != 9_000 {
		t.Fatalf("after settling: balance %d, available %d, want 9000", got, avail())
	}
	if got := balance(t, led, AccountRef{Kind: KindSolverEarnings, Party: "s1"}); got != 950 {
		t.Fatalf("solver earned %d, want 950 (5%% fee)", got)
	}
	if got := balance(t, led, AccountRef{Kind: KindPlatformFees}); got != 50 {
		t.Fatalf("fees %d, want 50", got)
	}
	if err := s.VoidInference(ctx, "req-1"); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("void after settle: %v", err)
	}
	// A failed request: held, voided, nothing billed; it cannot be settled after.
	noErr(t, s.HoldInference(ctx, "acme", "req-2", 3_000))
	noErr(t, s.VoidInference(ctx, "req-2"))
	noErr(t, s.VoidInference(ctx, "req-2"))
	if err := s.SettleInference(ctx, "req-2", "s1", 10); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("settle after void: %v", err)
	}
	if got := avail(); got != 9_000 {
		t.Fatalf("after a voided request: %d available, want 9000", got)
	}
	// No funds: refused, nothing changes.
	if err := s.HoldInference(ctx, "acme", "req-3", 9_001); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("hold beyond the funds: %v", err)
	}
	if err := s.HoldInference(ctx, "nobody", "req-4", 1); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("hold with no account: %v", err)
	}
	if got := avail(); got != 9_000 {
		t.Fatalf("after refused holds: %d available, want 9000", got)
	}
	if err := s.SettleInference(ctx, "never-held", "s1", 10); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("settle without a hold: %v", err)
	}
	noErr(t, s.CheckLedger(ctx))
}

// TestTokenCost: ⌈n · price / 1000⌉, exactly, and refused on overflow.
func TestTokenCost(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ n, perK, want int64 }{{0, 500, 0}, {1, 500, 1}, {1000, 500, 500}, {1001, 500, 501}, {7, 1, 1}, {3, 0, 0}} {
		if got, err := TokenCostMicroUSD(c.n, c.perK); err != nil || got != c.want {
			t.Errorf("TokenCost(%d, %d) = %d, %v; want %d", c.n, c.perK, got, err, c.want)
		}
	}
	if _, err := TokenCostMicroUSD(1<<62, 1<<40); !errors.Is(err, ErrInvalid) {
		t.Errorf("overflow: %v", err)
	}
	if _, err := TokenCostMicroUSD(-1, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative: %v", err)
	}
}

// TestSlashInference: a proven fraud takes up to the minimum bond from the
// solver: the client's cost back, the verifier's bounty, the platform's
// rest, once per request; an empty bond moves nothing; the ledger
// balances.
func TestSlashInference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindSolverBond, Party: "s1"}, AmountMicroUSD: 25_000_000, BankRef: "b1"}))
	sl, err := s.SlashInference(ctx, "req-9", "s1", "acme", "v1", 1_234)
	noErr(t, err)
	min := DefaultPolicy().MinBondMicroUSD
	if sl.SlashedMicroUSD != min || sl.RefundMicroUSD != 1_234 || sl.BountyMicroUSD != (min-1_234)/2 || sl.SlashedMicroUSD != sl.RefundMicroUSD+sl.BountyMicroUSD+sl.PlatformMicroUSD {
		t.Fatalf("slash %+v", sl)
	}
	again, err := s.SlashInference(ctx, "req-9", "s1", "acme", "v1", 1_234)
	noErr(t, err)
	if again.SlashedMicroUSD != 0 || balance(t, led, AccountRef{Kind: KindSolverBond, Party: "s1"}) != 25_000_000-min {
		t.Fatalf("second slash of one request moved money: %+v", again)
	}
	if got := balance(t, led, AccountRef{Kind: KindClientFunds, Party: "acme"}); got != 1_234 {
		t.Fatalf("client refunded %d", got)
	}
	if got := balance(t, led, AccountRef{Kind: KindVerifierEarnings, Party: "v1"}); got != sl.BountyMicroUSD {
		t.Fatalf("verifier got %d", got)
	}
	none, err := s.SlashInference(ctx, "req-10", "s2", "acme", "v1", 10)
	noErr(t, err)
	if none.SlashedMicroUSD != 0 || none.RefundMicroUSD != 0 {
		t.Fatalf("an empty bond, no earnings: %+v", none)
	}
	noErr(t, s.CheckLedger(ctx))
}

// TestSlashClawsBackEarnings: a cheater whose bond its earlier frauds
// took still refunds the client, from the earnings it was paid for its
// answers (unpaid yet), as far as they go; the ledger balances.
func TestSlashClawsBackEarnings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	min := DefaultPolicy().MinBondMicroUSD
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindSolverBond, Party: "s1"}, AmountMicroUSD: min, BankRef: "b1"}))
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindClientFunds, Party: "acme"}, AmountMicroUSD: 1_000_000, BankRef: "c1"}))
	for _, req := range []string{"r1", "r2"} { // two answers paid
		noErr(t, s.HoldInference(ctx, "acme", req, 3_000))
		noErr(t, s.SettleInference(ctx, req, "s1", 3_000))
	}
	earned := balance(t, led, AccountRef{Kind: KindSolverEarnings, Party: "s1"})
	client := balance(t, led, AccountRef{Kind: KindClientFunds, Party: "acme"})
	first, err := s.SlashInference(ctx, "r1", "s1", "acme", "v1", 3_000)
	noErr(t, err)
	if first.SlashedMicroUSD != min || first.RefundMicroUSD != 3_000 || first.ClawbackMicroUSD != 0 {
		t.Fatalf("first fraud %+v", first)
	}
	second, err := s.SlashInference(ctx, "r2", "s1", "acme", "v1", 3_000)
	noErr(t, err)
	if second.SlashedMicroUSD != 0 || second.RefundMicroUSD != 3_000 || second.ClawbackMicroUSD != 3_000 {
		t.Fatalf("second fraud, the bond gone: %+v", second)
	}
	if got := balance(t, led, AccountRef{Kind: KindClientFunds, Party: "acme"}); got != client+6_000 {
		t.Fatalf("client has %d, want %d", got, client+6_000)
	}
	if got := balance(t, led, AccountRef{Kind: KindSolverEarnings, Party: "s1"}); got != earned-3_000 {
		t.Fatalf("cheater's earnings %d, want %d", got, earned-3_000)
	}
	again, err := s.SlashInference(ctx, "r2", "s1", "acme", "v1", 3_000)
	noErr(t, err)
	if again.RefundMicroUSD != 0 {
		t.Fatalf("a clawback twice: %+v", again)
	}
	third, err := s.SlashInference(ctx, "r3", "s1", "acme", "v1", 1_000_000) // more than is left
	noErr(t, err)
	if third.ClawbackMicroUSD != earned-3_000 {
		t.Fatalf("a refund beyond the earnings: %+v", third)
	}
	noErr(t, s.CheckLedger(ctx))
}

// TestSlashFalseVerdict: a verifier whose fraud verdict the referee
// refuted loses up to the verifier bond, half to the solver it accused,
// once per request; an empty bond moves nothing; the ledger balances.
func TestSlashFalseVerdict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindVerifierBond, Party: "v1"}, AmountMicroUSD: 30_000_000, BankRef: "vb1"}))
	sl, err := s.SlashFalseVerdict(ctx, "req-7", "v1", "s1")
	noErr(t, err)
	vb := DefaultPolicy().VerifierBondMicroUSD
	if sl.SlashedMicroUSD != vb || sl.SolverMicroUSD != vb/2 || sl.SolverMicroUSD+sl.PlatformMicroUSD != vb {
		t.Fatalf("slash %+v", sl)
	}
	again, err := s.SlashFalseVerdict(ctx, "req-7", "v1", "s1")
	noErr(t, err)
	if again.SlashedMicroUSD != 0 || balance(t, led, AccountRef{Kind: KindVerifierBond, Party: "v1"}) != 30_000_000-vb {
		t.Fatalf("second slash of one verdict moved money: %+v", again)
	}
	if got := balance(t, led, AccountRef{Kind: KindSolverEarnings, Party: "s1"}); got != vb/2 {
		t.Fatalf("the accused solver got %d", got)
	}
	rest, err := s.SlashFalseVerdict(ctx, "req-8", "v1", "s1") // what is left of the bond
	noErr(t, err)
	if rest.SlashedMicroUSD != 30_000_000-vb {
		t.Fatalf("second verdict slashed %+v", rest)
	}
	none, err := s.SlashFalseVerdict(ctx, "req-9", "v1", "s1")
	noErr(t, err)
	if none.SlashedMicroUSD != 0 {
		t.Fatalf("an empty bond slashed %+v", none)
	}
	if _, err := s.SlashFalseVerdict(ctx, "", "v1", "s1"); err == nil {
		t.Fatal("a slash for no request")
	}
	noErr(t, s.CheckLedger(ctx))
}

// TestSlashFalsePass: a verifier that passed a receipt later proven
// fraudulent loses up to the verifier bond, all to the platform, once per
// request, apart from a false-verdict slash of another verifier on the
// same request; the ledger balances.
func TestSlashFalsePass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindVerifierBond, Party: "v1"}, AmountMicroUSD: 30_000_000, BankRef: "vb1"}))
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindVerifierBond, Party: "v2"}, AmountMicroUSD: 30_000_000, BankRef: "vb2"}))
	platform := balance(t, led, AccountRef{Kind: KindPlatformFees})
	vb := DefaultPolicy().VerifierBondMicroUSD
	sl, err := s.SlashFalsePass(ctx, "req-7", "v1")
	noErr(t, err)
	if sl.SlashedMicroUSD != vb || sl.SolverMicroUSD != 0 || sl.PlatformMicroUSD != vb {
		t.Fatalf("slash %+v", sl)
	}
	again, err := s.SlashFalsePass(ctx, "req-7", "v1")
	noErr(t, err)
	if again.SlashedMicroUSD != 0 || balance(t, led, AccountRef{Kind: KindVerifierBond, Party: "v1"}) != 30_000_000-vb {
		t.Fatalf("second slash of one pass moved money: %+v", again)
	}
	other, err := s.SlashFalseVerdict(ctx, "req-7", "v2", "s1")
	noErr(t, err)
	if other.SlashedMicroUSD != vb {
		t.Fatalf("a false verdict on the same request after a false pass: %+v", other)
	}
	if got := balance(t, led, AccountRef{Kind: KindPlatformFees}) - platform; got != vb+other.PlatformMicroUSD {
		t.Fatalf("the platform got %d", got)
	}
	noErr(t, s.CheckLedger(ctx))
}

// TestSlashBothLose: when the referee finds the solver and its accuser
// both wrong, each bond is slashed and neither party is paid from the
// other's: the client gets its cost back, the platform the rest.
func TestSlashBothLose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindSolverBond, Party: "s1"}, AmountMicroUSD: 25_000_000, BankRef: "b1"}))
	must(s.RecordDeposit(ctx, Deposit{Account: AccountRef{Kind: KindVerifierBond, Party: "v1"}, AmountMicroUSD: 30_000_000, BankRef: "vb1"}))
	platform := balance(t, led, AccountRef{Kind: KindPlatformFees})
	sl, err := s.SlashInference(ctx, "req-5", "s1", "acme", "", 1_000)
	noErr(t, err)
	min := DefaultPolicy().MinBondMicroUSD
	if sl.SlashedMicroUSD != min || sl.RefundMicroUSD != 1_000 || sl.BountyMicroUSD != 0 || sl.PlatformMicroUSD != min-1_000 {
		t.Fatalf("solver slash without a bounty %+v", sl)
	}
	vs, err := s.SlashFalseVerdict(ctx, "req-5", "v1", "")
	noErr(t, err)
	vb := DefaultPolicy().VerifierBondMicroUSD
	if vs.SlashedMicroUSD != vb || vs.SolverMicroUSD != 0 || vs.PlatformMicroUSD != vb {
		t.Fatalf("verifier slash without a share %+v", vs)
	}
	for _, a := range []AccountRef{{Kind: KindVerifierEarnings, Party: "v1"}, {Kind: KindSolverEarnings, Party: "s1"}} {
		if got := balance(t, led, a); got != 0 {
			t.Fatalf("%v was paid %d from the other loser's slash", a, got)
		}
	}
	if got := balance(t, led, AccountRef{Kind: KindPlatformFees}) - platform; got != min-1_000+vb {
		t.Fatalf("the platform got %d, want %d", got, min-1_000+vb)
	}
	noErr(t, s.CheckLedger(ctx))
}
