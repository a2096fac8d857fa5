package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// TestPartyStatusShowsBondEarningsAndNextPayout: a solver reads, with its
// own key, its free and locked bond, its jobs, its earnings and what the
// next payout run (the 15th) pays it; nobody else's key reads it but the
// operator's.
func TestPartyStatusShowsBondEarningsAndNextPayout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	solverKey, _, err := e.keys.Issue(ctx, "gpu1", auth.RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := e.keys.Issue(ctx, "gpu2", auth.RoleSolver, 0)
	var deposited []service.AccountRef
	e.server.OnDeposit(func(a service.AccountRef) { deposited = append(deposited, a) })

	status := func(key string) (int, service.PartyStatus) {
		t.Helper()
		c, b := e.do("GET", "/v1/parties/gpu1", key, "", "")
		var st service.PartyStatus
		if c == 200 {
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
		}
		return c, st
	}
	// Before any deposit: zero, and no payout.
	if c, st := status(solverKey); c != 200 || st.BondMicroUSD != 0 || st.MinBondMicroUSD <= 0 || len(st.Jobs) != 0 || st.NextPayout.Period != "2026-11-15" {
		t.Fatalf("new solver: %d %+v", c, st)
	}
	for _, k := range []string{otherKey, e.client} {
		if c, _ := status(k); c != 404 {
			t.Fatalf("another party's key read gpu1's status: %d", c)
		}
	}
	if c, _ := e.do("GET", "/v1/parties/gpu1", "", "", ""); c != 401 {
		t.Fatalf("no key: %d", c)
	}

	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":500000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d2", `{"bank_ref":"w2","account":"solver_bond:gpu1","amount_micro_usd":100000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	if len(deposited) != 2 || deposited[1] != (service.AccountRef{Kind: service.KindSolverBond, Party: "gpu1"}) {
		t.Fatalf("the deposit hook heard %v", deposited)
	}
	if _, err := e.svc.PostAsk(ctx, service.Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 1, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c, b := e.do("POST", "/v1/jobs", e.client, "j1", jobBody(t, 1, 3_000_000))
	if c != 201 {
		t.Fatalf("job: %d %s", c, b)
	}
	var j service.Job
	json.Unmarshal(b, &j)
	_, st := status(solverKey)
	if st.BondHeldMicroUSD <= 0 || st.BondMicroUSD+st.BondHeldMicroUSD != 100_000_000 || len(st.Jobs) != 1 || st.Jobs[0].JobID != j.ID || st.Jobs[0].State != "matched" {
		t.Fatalf("matched: %+v", st)
	}
	for _, ev := range []func() (*service.Job, error){
		func() (*service.Job, error) { return e.svc.Advance(ctx, j.ID, 2) },
		func() (*service.Job, error) { return e.svc.Advance(ctx, j.ID, 4) },
		func() (*service.Job, error) { return e.svc.Advance(ctx, j.ID, 5) },
		func() (*service.Job, error) { return e.svc.Settle(ctx, j.ID, nil) },
	} {
		if _, err := ev(); err != nil {
			t.Fatal(err)
		}
	}
	_, st = status(solverKey)
	if st.EarningsMicroUSD <= 0 || st.BondHeldMicroUSD != 0 || st.NextPayout.BankDetails || st.NextPayout.AmountCents != 0 {
		t.Fatalf("settled, no bank details: %+v", st)
	}
	if err := e.svc.SetBankDetails(ctx, service.AccountRef{Kind: service.KindSolverEarnings, Party: "gpu1"}, payout.BankAccount{HolderName: "Ada", RoutingNumber: "231380104", AccountNumber: "1234", Type: payout.Checking}); err != nil {
		t.Fatal(err)
	}
	_, st = status(solverKey)
	if !st.NextPayout.BankDetails || st.NextPayout.AmountCents != st.EarningsMicroUSD/10_000 || !st.NextPayout.At.Equal(time.Date(2026, 11, 15, 0, 0, 0, 0, st.NextPayout.At.Location())) {
		t.Fatalf("with bank details: %+v", st)
	}
	// The operator reads it too, as either role.
	if c, b := e.do("GET", "/v1/parties/gpu1", e.operator, "", ""); c != 200 {
		t.Fatalf("operator: %d %s", c, b)
	}
	if c, _ := e.do("GET", "/v1/parties/gpu1?role=auditor", e.operator, "", ""); c != 400 {
		t.Fatalf("a bad role: %d", c)
	}
	if c, _ := e.do("GET", "/v1/parties/not%20a%20party", e.operator, "", ""); c != 400 {
		t.Fatalf("a bad party ID: %d", c)
	}
}
