package service

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/beluga-compute/beluga/coordinator/market"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/spec"
)

// DefaultVerifierRatePPM is the default verifier rate: 125% of the job's
// trade price per replayed compute unit (see Policy.VerifierRatePPM).
const DefaultVerifierRatePPM = 1_250_000

// MaxVerifierRatePPM bounds Policy.VerifierRatePPM (4× the trade price),
// so that replayed steps × rate fits an int64 for every run of up to
// plan.MaxSteps steps.
const MaxVerifierRatePPM = 4_000_000

// AuditPlan is the audit the planner (protocol/core/plan) asks of a job's
// spec: the segments sampled and the steps they replay. It is a function
// of the spec alone, so the quote, the escrow and the settlement of a job
// all see the same plan.
type AuditPlan struct {
	Steps    int64 `json:"steps"`
	Segments int64 `json:"segments"`
	Samples  int64 `json:"samples"`
	// ReplaySteps is the most steps one audit replays: samples × digest
	// interval, or every step when every segment is sampled
	// (plan.Point.ReplaySteps).
	ReplaySteps int64 `json:"replay_steps"`
}

// PlanAudit returns the audit plan of sp: the clustered-model sample count
// for the spec's cheat fraction and confidence (the count verifier/audit
// replays), at most every segment.
func PlanAudit(sp *spec.Spec) (AuditPlan, error) {
	n, k := sp.Steps, sp.DigestInterval
	s, err := plan.SampleCount(n, k, sp.Audit.CheatFractionPPM, sp.Audit.ConfidencePPM, plan.Clustered)
	if err != nil {
		return AuditPlan{}, fmt.Errorf("%w: audit plan: %w", ErrInvalid, err)
	}
	N := plan.Segments(n, k)
	s = min(s, N)
	return AuditPlan{Steps: n, Segments: N, Samples: s, ReplaySteps: min(s*k, n)}, nil
}

// auditMicroUSD is what one audit of plan p costs for a job of cu compute
// units at a price in nano-dollars per CU and the verifier rate:
// price × cu × (replayed steps / steps) × rate, rounded as r says.
func auditMicroUSD(p AuditPlan, priceNanoUSDPerCU, cu, ratePPM int64, r market.Rounding) (int64, error) {
	v, err := market.AmountMicroUSD(priceNanoUSDPerCU, cu, p.ReplaySteps*ratePPM, p.Steps*plan.PPM, r)
	if err != nil {
		return 0, fmt.Errorf("%w: audit cost: %w", ErrInvalid, err)
	}
	return v, nil
}

// Terms are what posting a job commits the client to: everything PostJob
// escrows, computed by one function so that a quote is exactly what the
// job then escrows.
type Terms struct {
	CU   int64
	Kind market.Kind
	// MaxPriceNanoUSDPerCU is the client's cap (0: market).
	MaxPriceNanoUSDPerCU int64
	// EscrowPriceNanoUSDPerCU is the price the escrow is sized at: the
	// client's cap, or for a market order the book's cap.
	EscrowPriceNanoUSDPerCU int64
	// MaxCostMicroUSD is ⌈escrow price × CU⌉: the most the solvers can be
	// paid.
	MaxCostMicroUSD int64
	// FeeMicroUSD is the platform fee on MaxCostMicroUSD (rounded down).
	FeeMicroUSD int64
	// Audit is the planner's audit of the spec; AuditBudgetMicroUSD is one
	// such audit at the escrow price and VerifierRatePPM, rounded up.
	Audit               AuditPlan
	VerifierRatePPM     int64
	AuditBudgetMicroUSD int64
	// EscrowMicroUSD is the sum of the three.
	EscrowMicroUSD int64
}

// terms computes the terms of posting sp at maxPrice (nano-dollars per
// CU; 0 for market). The client and job IDs only satisfy the book's
// validation; the terms do not depend on them.
func (s *Service) terms(sp *spec.Spec, clientID, jobID string, maxPrice int64) (Terms, error) {
	cu, err := ComputeUnits(sp)
	if err != nil {
		return Terms{}, err
	}
	if maxPrice < 0 {
		return Terms{}, fmt.Errorf("%w: negative max price", ErrInvalid)
	}
	t := Terms{CU: cu, Kind: market.Limit, MaxPriceNanoUSDPerCU: maxPrice, EscrowPriceNanoUSDPerCU: maxPrice, VerifierRatePPM: s.cfg.policy.VerifierRatePPM}
	if maxPrice == 0 {
		t.Kind, t.EscrowPriceNanoUSDPerCU = market.Market, s.book.MaxPriceNanoUSDPerCU()
	}
	t.MaxCostMicroUSD, err = s.book.MaxCostMicroUSD(market.Bid{ClientID: clientID, JobID: jobID, CU: cu, Kind: t.Kind, MaxPriceNanoUSDPerCU: maxPrice})
	if err != nil {
		return Terms{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	t.FeeMicroUSD = mulPPM(t.MaxCostMicroUSD, s.cfg.policy.FeePPM)
	if t.Audit, err = PlanAudit(sp); err != nil {
		return Terms{}, err
	}
	if t.AuditBudgetMicroUSD, err = auditMicroUSD(t.Audit, t.EscrowPriceNanoUSDPerCU, cu, t.VerifierRatePPM, market.Up); err != nil {
		return Terms{}, err
	}
	if t.EscrowMicroUSD, err = addAll(t.MaxCostMicroUSD, t.FeeMicroUSD, t.AuditBudgetMicroUSD); err != nil {
		return Terms{}, err
	}
	return t, nil
}

// Quote is what posting a job would escrow, line by line: the API's
// answer to POST /v1/quote. TotalMicroUSD is exactly the escrow PostJob
// then reserves (with the same spec, price and policy).
type Quote struct {
	ComputeUnits int64       `json:"compute_units"`
	Lines        []QuoteLine `json:"lines"`
	// TotalMicroUSD is the sum of the lines: the escrow.
	TotalMicroUSD int64 `json:"total_micro_usd"`
	// PriceNanoUSDPerCU is the price the solver line is sized at: the
	// client's maximum, or for a market order the book's cap.
	PriceNanoUSDPerCU int64 `json:"price_nano_usd_per_cu"`
	// MarketPriceNanoUSDPerCU is the price a market order would trade at
	// now (the best ask), if any solver is asking.
	MarketPriceNanoUSDPerCU int64 `json:"market_price_nano_usd_per_cu,omitempty"`
	// Audit is the planner's audit the audit line pays for.
	Audit AuditPlan `json:"audit"`
}

// QuoteLine is one item of a quote: "solver", "audit" or "fee".
type QuoteLine struct {
	Item     string `json:"item"`
	MicroUSD int64  `json:"micro_usd"`
	Detail   string `json:"detail"`
}

// Quote items.
const (
	QuoteSolver = "solver"
	QuoteAudit  = "audit"
	QuoteFee    = "fee"
)

// QuoteJob returns what PostJob would escrow for r, changing nothing: the
// spec is decoded and validated and the price checked as PostJob does.
// Whatever it returns, PostJob with the same request escrows exactly
// TotalMicroUSD (unless the policy or the book's cap changes in between).
func (s *Service) QuoteJob(_ context.Context, r PostJobRequest) (*Quote, error) {
	if err := CheckPartyID(r.ClientID); err != nil {
		return nil, err
	}
	sp, err := spec.Decode(r.Spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	t, err := s.terms(sp, r.ClientID, "quote", r.MaxPriceNanoUSDPerCU)
	if err != nil {
		return nil, err
	}
	q := &Quote{ComputeUnits: t.CU, TotalMicroUSD: t.EscrowMicroUSD, PriceNanoUSDPerCU: t.EscrowPriceNanoUSDPerCU, Audit: t.Audit}
	if p, ok := s.book.Quote(); ok {
		q.MarketPriceNanoUSDPerCU = p
	}
	solver := fmt.Sprintf("%d CU at up to %d n$/CU (your maximum), rounded up; the solver is paid its ask and the rest comes back", t.CU, t.EscrowPriceNanoUSDPerCU)
	if t.Kind == market.Market {
		solver = fmt.Sprintf("%d CU at up to %d n$/CU (a market order is escrowed at the book's cap); the solver is paid its ask", t.CU, t.EscrowPriceNanoUSDPerCU)
		if q.MarketPriceNanoUSDPerCU > 0 {
			solver += fmt.Sprintf(" (the best ask now is %d n$/CU)", q.MarketPriceNanoUSDPerCU)
		}
		solver += " and the rest comes back"
	}
	q.Lines = []QuoteLine{
		{Item: QuoteSolver, MicroUSD: t.MaxCostMicroUSD, Detail: solver},
		{Item: QuoteAudit, MicroUSD: t.AuditBudgetMicroUSD, Detail: fmt.Sprintf(
			"one audit replays %d of %d steps (%d of %d segments sampled); the verifier is paid that share of the compute at %s of the trade price, rounded up here",
			t.Audit.ReplaySteps, t.Audit.Steps, t.Audit.Samples, t.Audit.Segments, ppmPercent(t.VerifierRatePPM))},
		{Item: QuoteFee, MicroUSD: t.FeeMicroUSD, Detail: fmt.Sprintf("%s of the solver line, charged on the actual cost", ppmPercent(s.cfg.policy.FeePPM))},
	}
	return q, nil
}

// ppmPercent renders parts per million as a percentage ("125%", "5%",
// "2.5%").
func ppmPercent(ppm int64) string {
	whole, frac := ppm/10_000, ppm%10_000
	if frac == 0 {
		return fmt.Sprintf("%d%%", whole)
	}
	s := fmt.Sprintf("%d.%04d", whole, frac)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	return s + "%"
}

// VerifierAuditMicroUSD is what one audit of job j pays its verifier: the
// compute it replays (the job's CU × its replayed fraction) at the job's
// trade price and verifier rate, rounded down. It never exceeds the
// job's audit budget, which is the same at the maximum price rounded up.
// A job posted before audits were priced by compute (no replay steps
// recorded) has its plan recomputed from its spec, at the current rate.
func (s *Service) VerifierAuditMicroUSD(j *Job) (int64, error) {
	sp, err := spec.Decode(j.Spec)
	if err != nil {
		return 0, fmt.Errorf("%w: job %s spec: %w", ErrInvalid, j.ID, err)
	}
	p, err := PlanAudit(sp)
	if err != nil {
		return 0, err
	}
	if j.AuditReplaySteps != 0 && j.AuditReplaySteps != p.ReplaySteps {
		return 0, fmt.Errorf("%w: job %s records %d replayed steps, its spec plans %d", ErrInvalid, j.ID, j.AuditReplaySteps, p.ReplaySteps)
	}
	rate := j.VerifierRatePPM
	if j.AuditReplaySteps == 0 {
		rate = s.cfg.policy.VerifierRatePPM
	}
	pay, err := auditMicroUSD(p, j.PriceNanoUSDPerCU, j.CU, rate, market.Down)
	if err != nil {
		return 0, err
	}
	return min(pay, j.AuditBudgetMicroUSD), nil
}

// UnmarshalJSON reads a job record, converting the micro-dollar prices of
// records stored by earlier versions (max_price_micro_usd_per_cu,
// price_micro_usd_per_cu) to nano-dollars, so that a job in flight across
// an upgrade settles at the price it was matched at.
func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job
	v := struct {
		*plain
		LegacyMaxPrice *int64 `json:"max_price_micro_usd_per_cu"`
		LegacyPrice    *int64 `json:"price_micro_usd_per_cu"`
	}{plain: (*plain)(j)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	for _, c := range []struct {
		legacy *int64
		nano   *int64
	}{{v.LegacyMaxPrice, &j.MaxPriceNanoUSDPerCU}, {v.LegacyPrice, &j.PriceNanoUSDPerCU}} {
		if c.legacy == nil || *c.nano != 0 {
			continue
		}
		n, err := market.NanoFromMicro(*c.legacy)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.ID, err)
		}
		*c.nano = n
	}
	return nil
}
