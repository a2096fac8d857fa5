package service

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// wantAuditPay computes one audit's pay for settled job j from first
// principles: ⌊price × CU × replayed steps × rate / (steps × 10^6 × 1000)⌋,
// with the replayed steps from the planner's sample count.
func wantAuditPay(t testing.TB, j *Job) int64 {
	t.Helper()
	sp := must(spec.Decode(j.Spec))
	s := must(plan.SampleCount(sp.Steps, sp.DigestInterval, sp.Audit.CheatFractionPPM, sp.Audit.ConfidencePPM, plan.Clustered))
	replay := min(s*sp.DigestInterval, sp.Steps)
	if replay != j.AuditReplaySteps {
		t.Fatalf("job records %d replayed steps, the planner says %d", j.AuditReplaySteps, replay)
	}
	x := new(big.Int).Mul(big.NewInt(j.PriceNanoUSDPerCU), big.NewInt(j.CU))
	x.Mul(x, big.NewInt(replay*DefaultVerifierRatePPM))
	x.Quo(x, new(big.Int).Mul(big.NewInt(sp.Steps), big.NewInt(1_000_000_000)))
	return x.Int64()
}

// runToAuditWindow posts js at maxPrice (an ask at price is on the book),
// runs it and gives its audit to ver1.
func runToAuditWindow(t testing.TB, s *Service, js []byte, price, maxPrice int64) *Job {
	t.Helper()
	ctx := context.Background()
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: price, Capacity: 4, TTL: time.Hour}))
	j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: maxPrice}))
	if j.State != lifecycle.Matched {
		t.Fatalf("job %s", j.State)
	}
	must(s.Advance(ctx, j.ID, lifecycle.EventStart))
	must(s.Checkpoint(ctx, j.ID, j.Steps))
	must(s.Advance(ctx, j.ID, lifecycle.EventCommit))
	must(s.Advance(ctx, j.ID, lifecycle.EventOpenAudit))
	return must(s.AssignAudit(ctx, mustJobID(j.ID), "ver1"))
}

func fund(t testing.TB, s *Service) {
	ctx := context.Background()
	must(s.RecordDeposit(ctx, Deposit{BankRef: "c", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000_000}))
	must(s.RecordDeposit(ctx, Deposit{BankRef: "s", Account: AccountRef{KindSolverBond, "gpu1"}, AmountMicroUSD: 1_000_000_000_000}))
	enrol(t, s, "ver1", 1_000_000_000_000)
}

// TestQuoteEqualsEscrow: the quote's total is exactly what posting the
// same request escrows, its lines are the job's max cost, audit budget
// and fee, for a limit order and for a market order.
func TestQuoteEqualsEscrow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	fund(t, s)
	for i, maxPrice := range []int64{1_100, 0, 3_000_000_000} {
		js := specJSON(t, uint64(100+i))
		q := must(s.QuoteJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: maxPrice}))
		before := must(led.Account(ctx, AccountRef{KindClientFunds, "acme"}.ID())).AvailableMicroUSD()
		j := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: maxPrice}))
		a := must(led.Account(ctx, AccountRef{KindClientFunds, "acme"}.ID()))
		held := before - a.AvailableMicroUSD()
		if q.TotalMicroUSD != j.EscrowMicroUSD || held != j.EscrowMicroUSD || q.ComputeUnits != j.CU {
			t.Fatalf("max %d: quote %d for %d CU, job escrows %d for %d CU, client funds held %d", maxPrice, q.TotalMicroUSD, q.ComputeUnits, j.EscrowMicroUSD, j.CU, held)
		}
		lines := map[string]int64{}
		var sum int64
		for _, l := range q.Lines {
			lines[l.Item] = l.MicroUSD
			sum += l.MicroUSD
			if l.Detail == "" {
				t.Errorf("line %s has no detail", l.Item)
			}
		}
		if sum != q.TotalMicroUSD || len(q.Lines) != 3 || lines[QuoteSolver] != j.MaxCostMicroUSD || lines[QuoteAudit] != j.AuditBudgetMicroUSD ||
			lines[QuoteFee] != j.EscrowMicroUSD-j.MaxCostMicroUSD-j.AuditBudgetMicroUSD {
			t.Fatalf("max %d: lines %+v, job %+v", maxPrice, q.Lines, j)
		}
		want := maxPrice
		if maxPrice == 0 {
			want = s.book.MaxPriceNanoUSDPerCU()
		}
		if q.PriceNanoUSDPerCU != want {
			t.Fatalf("quote price %d, want %d", q.PriceNanoUSDPerCU, want)
		}
	}
	checkAll(t, s, led)
}

// TestVerifierPayScalesWithReplayedCompute: a verifier is paid for the
// compute it replays. A small job (few steps, every segment replayed) and
// a large one (many steps, a sample replayed) at one price: each audit pays
// price × CU × replayed fraction × rate; the large job's audit pays more
// than the small one's by the ratio of replayed compute; and the small
// job's audit costs less than its training (the flat $1 paid 5× the solver
// of a $0.20 job).
func TestVerifierPayScalesWithReplayedCompute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	fund(t, s)
	// The example model is small (about 32 MMACs a step, one CU per 30,000
	// steps): a high price makes the amounts big enough to compare.
	const price = 500_000_000 // n$/CU
	var pays, replayedCU []float64
	for _, steps := range []int64{64, 600_000} {
		sp := must(catalog.Example(catalog.ExampleFashionMNIST))
		sp.Steps, sp.Optimizer.LR[len(sp.Optimizer.LR)-1].Step = steps, steps
		sp.DigestInterval, sp.CheckpointInterval = max(1, steps/1000), max(1, steps/1000)*10
		noErr(t, sp.Validate())
		j := runToAuditWindow(t, s, must(sp.JSON()), price, 2*price)
		before := balance(t, led, AccountRef{KindVerifierEarnings, "ver1"})
		j = must(s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 1}}))
		pay := balance(t, led, AccountRef{KindVerifierEarnings, "ver1"}) - before
		if want := wantAuditPay(t, j); pay != want || pay <= 0 || pay > j.AuditBudgetMicroUSD {
			t.Fatalf("%d steps: verifier paid %d, want %d (budget %d)", steps, pay, want, j.AuditBudgetMicroUSD)
		}
		solverCost := j.PriceNanoUSDPerCU * j.CU / 1000
		t.Logf("%d steps, %d CU: solver %d µ$, audit replays %d steps, verifier %d µ$ (budget %d)", steps, j.CU, solverCost, j.AuditReplaySteps, pay, j.AuditBudgetMicroUSD)
		if steps == 64 && (j.AuditReplaySteps != steps || pay > solverCost*5/4+1) {
			t.Fatalf("small job: replays %d of %d steps, verifier %d vs solver %d", j.AuditReplaySteps, steps, pay, solverCost)
		}
		if steps == 600_000 && (j.AuditReplaySteps >= steps || pay >= solverCost) {
			t.Fatalf("large job: replays %d of %d steps, verifier %d vs solver %d", j.AuditReplaySteps, steps, pay, solverCost)
		}
		pays = append(pays, float64(pay))
		replayedCU = append(replayedCU, float64(j.CU)*float64(j.AuditReplaySteps)/float64(steps))
	}
	if pays[1] <= pays[0] {
		t.Fatalf("the large job's audit pays %v, the small one's %v", pays[1], pays[0])
	}
	// Pay per replayed CU is the same (up to rounding) for both.
	r0, r1 := pays[0]/replayedCU[0], pays[1]/replayedCU[1]
	if d := r0/r1 - 1; d > 0.01 || d < -0.01 {
		t.Fatalf("pay per replayed CU %.3f and %.3f µ$", r0, r1)
	}
	checkAll(t, s, led)
}

// TestSubMicroPrice: a price below one micro-dollar per CU posts, matches
// and settles; the escrow rounds up, payments round down, the client gets
// back the rest, and the escrow ends empty with the ledger balanced.
func TestSubMicroPrice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	fund(t, s)
	const price, maxPrice = 561, 777 // n$/CU
	j := runToAuditWindow(t, s, specJSON(t, 7), price, maxPrice)
	if j.PriceNanoUSDPerCU != price || j.MaxCostMicroUSD != (maxPrice*j.CU+999)/1000 {
		t.Fatalf("job at %d n$/CU, max cost %d for %d CU", j.PriceNanoUSDPerCU, j.MaxCostMicroUSD, j.CU)
	}
	client0 := balance(t, led, AccountRef{KindClientFunds, "acme"})
	j = must(s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 1}}))
	cost := price * j.CU / 1000
	fee := cost / 20
	vpay := wantAuditPay(t, j)
	if got := balance(t, led, AccountRef{KindSolverEarnings, "gpu1"}); got != cost {
		t.Fatalf("solver paid %d, want ⌊%d × %d / 1000⌋ = %d", got, price, j.CU, cost)
	}
	if got := client0 - balance(t, led, AccountRef{KindClientFunds, "acme"}); got != cost+fee+vpay {
		t.Fatalf("client charged %d, want %d", got, cost+fee+vpay)
	}
	checkAll(t, s, led)
}

// TestLegacyJobRecord: a job record stored with micro-dollar prices reads
// with those prices in nano-dollars.
func TestLegacyJobRecord(t *testing.T) {
	t.Parallel()
	var j Job
	if err := json.Unmarshal([]byte(`{"id":"x","max_price_micro_usd_per_cu":3,"price_micro_usd_per_cu":2,"seq":1,"steps":1,"compute_units":1,"history":[]}`), &j); err != nil {
		t.Fatal(err)
	}
	if j.MaxPriceNanoUSDPerCU != 3000 || j.PriceNanoUSDPerCU != 2000 || j.Seq != 1 {
		t.Fatalf("%+v", j)
	}
	b := must(json.Marshal(&j))
	var again Job
	noErr(t, json.Unmarshal(b, &again))
	if again.MaxPriceNanoUSDPerCU != 3000 || again.PriceNanoUSDPerCU != 2000 {
		t.Fatalf("round trip %+v", again)
	}
}

func TestPPMPercent(t *testing.T) {
	t.Parallel()
	for ppm, want := range map[int64]string{1_250_000: "125%", 50_000: "5%", 25_000: "2.5%", 1: "0.0001%", 0: "0%"} {
		if got := ppmPercent(ppm); got != want {
			t.Errorf("ppmPercent(%d) = %q, want %q", ppm, got, want)
		}
	}
}
