package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// checkAll checks the ledger's invariants and the service's: no job is
// left with an intent, and a job in a terminal state has an empty escrow
// with nothing reserved.
func checkAll(t testing.TB, s *Service, a ledger.Auditor) {
	t.Helper()
	ctx := context.Background()
	if err := ledger.CheckInvariants(ctx, a); err != nil {
		t.Fatal(err)
	}
	err := s.store.scan("job/", func(k string, v []byte) error {
		j, err := s.loadJob(strings.TrimPrefix(k, "job/"))
		if err != nil {
			return err
		}
		if j.Pending != nil {
			return fmt.Errorf("job %s left with an intent", j.ID)
		}
		acct, err := s.led.Account(ctx, AccountRef{KindEscrow, j.ID}.ID())
		if err != nil {
			return err
		}
		if j.State.Terminal() && (acct.Balances.CreditBalanceMicroUSD() != 0 || acct.CreditsPendingMicroUSD != 0) {
			return fmt.Errorf("job %s is %s but its escrow holds %+v", j.ID, j.State, acct.Balances)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot renders every balance, for before/after comparisons.
func snapshot(t testing.TB, a ledger.Auditor) string {
	var b strings.Builder
	if err := a.ScanAccounts(context.Background(), func(ac ledger.Account) error {
		fmt.Fprintf(&b, "%s:%v;", ac.ID, ac.Balances)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// expected errors: business rejections a random driver provokes.
func expected(err error) bool {
	return err == nil || errors.Is(err, ErrInsufficientFunds) || errors.Is(err, ErrIllegalState) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrPeriodNotDue)
}

// driver performs random operations on a service.
type driver struct {
	s    *Service
	clk  *fakeClock
	rng  *rand.Rand
	jobs []string
	n    int
	spec func(seed uint64) []byte
}

var (
	clients   = []string{"acme", "globex", "initech"}
	solvers   = []string{"gpu1", "gpu2", "gpu3", "gpu4"}
	verifiers = []string{"ver1", "ver2"}
)

func (d *driver) step(ctx context.Context) (string, error) {
	d.n++
	r := d.rng
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	switch op := r.IntN(20); {
	case op < 2:
		return "deposit", second(d.s.RecordDeposit(ctx, Deposit{BankRef: fmt.Sprint("r", r.IntN(1<<30)), Account: AccountRef{KindClientFunds, pick(clients)}, AmountMicroUSD: 1 + r.Int64N(200_000_000)}))
	case op < 3:
		k, p := KindSolverBond, pick(solvers)
		if r.IntN(2) == 0 {
			k, p = KindVerifierBond, pick(verifiers)
		}
		return "bond", second(d.s.RecordDeposit(ctx, Deposit{BankRef: fmt.Sprint("r", r.IntN(1<<30)), Account: AccountRef{k, p}, AmountMicroUSD: 1 + r.Int64N(100_000_000)}))
	case op < 5:
		return "ask", second(d.s.PostAsk(ctx, Ask{SolverID: pick(solvers), PriceNanoUSDPerCU: randPrice(r, 5_000_000), Capacity: 1 + r.IntN(3), TTL: time.Duration(1+r.IntN(48)) * time.Hour}))
	case op < 7:
		j, err := d.s.PostJob(ctx, PostJobRequest{ClientID: pick(clients), Spec: d.spec(r.Uint64N(1 << 20)), MaxPriceNanoUSDPerCU: randPrice(r, 6_000_000)})
		if err == nil {
			d.jobs = append(d.jobs, j.ID)
		}
		if errors.Is(err, ErrConflict) {
			err = nil // the same seed drawn twice with other terms
		}
		return "post", err
	case op < 8:
		d.clk.add(time.Duration(r.IntN(72)) * time.Hour)
		run, err := d.s.RunPayouts(ctx, d.s.Schedule().Due(d.clk.now()).ID())
		if err == nil && run.Posted && len(run.Payees) > 0 && len(run.ACH) == 0 {
			err = fmt.Errorf("run without ACH")
		}
		return "payout", err
	case op < 9:
		k, p := KindSolverEarnings, pick(solvers)
		if r.IntN(2) == 0 {
			k, p = KindVerifierEarnings, pick(verifiers)
		}
		return "bank", d.s.SetBankDetails(ctx, AccountRef{k, p}, bank("Payee "+p))
	}
	if len(d.jobs) == 0 {
		return "none", nil
	}
	id := d.jobs[r.IntN(len(d.jobs))]
	j, err := d.s.Job(ctx, must(spec.ParseJobID(id)))
	if err != nil {
		return "job", err
	}
	var name string
	switch j.State {
	case lifecycle.Posted, lifecycle.Resumable:
		name, err = "cancel", second(d.s.Cancel(ctx, id))
	case lifecycle.Matched:
		if r.IntN(4) == 0 {
			name, err = "vanish", second(d.s.Vanish(ctx, id))
		} else {
			name, err = "start", second(d.s.Advance(ctx, id, lifecycle.EventStart))
		}
	case lifecycle.Running:
		switch r.IntN(4) {
		case 0:
			name, err = "vanish", second(d.s.Vanish(ctx, id))
		case 1:
			name, err = "checkpoint", second(d.s.Checkpoint(ctx, id, j.CommittedStep+r.Int64N(j.Steps-j.CommittedStep+1)))
		default:
			name, err = "commit", second(d.s.Advance(ctx, id, lifecycle.EventCommit))
		}
	case lifecycle.Committed:
		name, err = "open_audit", second(d.s.Advance(ctx, id, lifecycle.EventOpenAudit))
	case lifecycle.AuditWindow:
		// Mostly the job's current auditor acts (anyone else is refused).
		cur := ""
		for _, a := range j.Auditors {
			if !a.Released {
				cur = a.VerifierID
			}
		}
		who := func() string {
			if cur != "" && r.IntN(4) > 0 {
				return cur
			}
			return pick(verifiers)
		}
		if cur == "" && r.IntN(2) == 0 || r.IntN(6) == 0 {
			name, err = "assign_audit", second(d.s.AssignAudit(ctx, must(spec.ParseJobID(id)), pick(verifiers)))
		} else if r.IntN(3) == 0 {
			name, err = "dispute", second(d.s.Dispute(ctx, id, who(), j.Solvers[r.IntN(len(j.Solvers))].SolverID))
		} else {
			// Two audits, or a second verifier, are refused.
			vs := []VerifierPay{{who(), r.Int64N(5) / 2}}
			if v := pick(verifiers); v != vs[0].VerifierID && r.IntN(4) == 0 {
				vs = append(vs, VerifierPay{v, r.Int64N(2)})
			}
			name, err = "settle", second(d.s.Settle(ctx, id, vs))
		}
	case lifecycle.Disputed:
		if r.IntN(2) == 0 {
			name, err = "slash_solver", second(d.s.SlashSolver(ctx, id))
		} else {
			name, err = "slash_verifier", second(d.s.SlashVerifier(ctx, id))
		}
	default:
		return "terminal", nil
	}
	return name, err
}

func newDriver(t testing.TB, s *Service, clk *fakeClock, seed uint64) *driver {
	base := specJSON(t, 0)
	for _, v := range verifiers {
		enrol(t, s, v, 0)
	}
	// Half the solvers start with bank details, so that payout runs have
	// entries early; the rest get them (or not) from the "bank" operation,
	// and runs skip them until then.
	for _, p := range solvers[:2] {
		noErr(t, s.SetBankDetails(context.Background(), AccountRef{KindSolverEarnings, p}, bank("Payee "+p)))
	}
	return &driver{s: s, clk: clk, rng: rand.New(rand.NewPCG(seed, 1)), spec: func(sd uint64) []byte {
		return []byte(strings.Replace(string(base), `"seed": 0,`, fmt.Sprintf(`"seed": %d,`, sd), 1))
	}}
}

func TestRandomizedOperations(t *testing.T) {
	ops := 1000
	if spectest.IsSlow() {
		ops = 30000
	}
	ctx := context.Background()
	s, led, clk := newMemService(t)
	d := newDriver(t, s, clk, 42)
	counts := map[string]int{}
	for i := range ops {
		name, err := d.step(ctx)
		if !expected(err) {
			t.Fatalf("op %d %s: %v", i, name, err)
		}
		if err == nil {
			counts[name]++
		} else {
			counts[name+"/rejected"]++
		}
		checkAll(t, s, led)
	}
	t.Logf("%d ops: %v", ops, counts)
	for _, must := range []string{"settle", "slash_solver", "slash_verifier", "payout", "vanish", "cancel"} {
		if counts[must] == 0 {
			t.Errorf("no successful %s in %d ops", must, ops)
		}
	}
}

// randPrice returns a price in nano-dollars per CU: below n µ$ three
// times in four, below n n$ (mostly under a micro-dollar per CU: every
// amount rounds) the fourth; 0 (market) is among them.
func randPrice(r *rand.Rand, n int64) int64 {
	if r.IntN(4) > 0 {
		return r.Int64N(n) * 1000
	}
	return r.Int64N(n)
}
