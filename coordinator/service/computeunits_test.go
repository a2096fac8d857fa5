package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// fashionMACsPerStep is the MACs of one step of the Fashion-MNIST example
// (MLP 784-256-128-10, batch 64): 64 × (2·784·256 + 3·256·128 + 3·128·10).
const fashionMACsPerStep = 64 * (2*784*256 + 3*256*128 + 3*128*10) // 32,227,328

// fashionWithSteps returns the Fashion-MNIST example trained for steps.
func fashionWithSteps(t testing.TB, steps int64) *spec.Spec {
	t.Helper()
	s := must(catalog.Example(catalog.ExampleFashionMNIST))
	s.Steps = steps
	s.Optimizer.LR[len(s.Optimizer.LR)-1].Step = steps
	noErr(t, s.Validate())
	return s
}

// TestComputeUnitsPricesData pins the formula on known specs: the data's
// bytes × DataMACsPerByte are added to the training MACs before rounding
// up to whole units.
func TestComputeUnitsPricesData(t *testing.T) {
	t.Parallel()
	// Fashion-MNIST: 70,000 samples of 784 features, (60,000 + 10,000) ×
	// 789 = 55,230,000 bytes, 56,555,520,000 MACs of data.
	const fashionBytes = 70_000 * (784 + 5)
	for _, c := range []struct {
		steps int64
		want  int64
	}{
		// 2,812 steps (three epochs): 90,623,246,336 + 56,555,520,000 MACs.
		{2812, 1},
		// 31,000 steps: 999,047,168,000 MACs of training alone fit one
		// unit; with the data's 56,555,520,000 they take two.
		{31_000, 2},
		// 62,000 steps: 1,998,094,336,000 + 56,555,520,000 → 3.
		{62_000, 3},
	} {
		s := fashionWithSteps(t, c.steps)
		if got := s.Data.Bytes(); got != fashionBytes {
			t.Fatalf("Fashion-MNIST data is %d bytes, want %d", got, fashionBytes)
		}
		wantMACs := fashionMACsPerStep*c.steps + fashionBytes*DataMACsPerByte
		if want := (wantMACs + MACsPerCU - 1) / MACsPerCU; want != c.want {
			t.Fatalf("steps %d: the table says %d CU, the formula %d", c.steps, c.want, want)
		}
		if got := must(ComputeUnits(s)); got != c.want {
			t.Errorf("steps %d: ComputeUnits = %d, want %d", c.steps, got, c.want)
		}
	}
	// The largest dataset on a one-step job: 2^28 bytes are 2^38 MACs,
	// 0.27 CU, so the job takes the minimum of one unit.
	s := fashionWithSteps(t, 1)
	s.Data = spec.Data{Source: spec.SourceIDX, Train: spec.DatasetRef{Root: s.Data.Train.Root, Count: 1 << 24, Features: 11, Classes: 10}}
	s.Model.Layers[0].Out = 1
	if s.Data.Bytes() != spec.MaxDatasetBytes {
		t.Fatalf("data is %d bytes, want the maximum", s.Data.Bytes())
	}
	if got := must(ComputeUnits(s)); got != 1 {
		t.Errorf("one step over the largest dataset: %d CU, want 1", got)
	}
}

// TestComputeUnitsRefusesOversizedData: a spec that skipped validation
// cannot wrap the data count into a small price, or panic.
func TestComputeUnitsRefusesOversizedData(t *testing.T) {
	t.Parallel()
	for _, r := range []spec.DatasetRef{
		{Count: 1<<24 + 1, Features: 11},             // one sample past the bound
		{Count: 1 << 62, Features: 1 << 40},          // wraps an int64 product
		{Count: -1, Features: 784},                   // negative
		{Count: 1 << 40, Features: -(1<<40 + 5) + 1}, // negative factor
	} {
		s := fashionWithSteps(t, 100)
		s.Data.Train, s.Data.Test = r, nil
		s.Data.Train.Classes = 10
		if _, err := ComputeUnits(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("count %d × features %d: %v, want ErrInvalid", r.Count, r.Features, err)
		}
	}
}

// TestPriceOrdersByDataSize: two jobs identical but for their dataset's
// size get different compute units, so different escrows and trade costs,
// the larger dataset the dearer. The steps put the training MACs just
// below one unit: 32,227,328 × 30,879 = 995,147,661,312. With 6,000
// samples (4,847,616,000 MACs of data) the job is one unit; with 60,000
// (48,476,160,000) it is two.
func TestPriceOrdersByDataSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "c", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000}))
	must(s.RecordDeposit(ctx, Deposit{BankRef: "b", Account: AccountRef{KindSolverBond, "gpu1"}, AmountMicroUSD: 1_000_000_000}))
	const price, maxPrice = 2_000_000_000, 3_000_000_000 // nano-dollars per CU: $2 and $3
	var jobs []*Job
	for _, count := range []int{6_000, 60_000} {
		sp := fashionWithSteps(t, 30_879)
		sp.Data = spec.Data{Source: spec.SourceIDX, Train: sp.Data.Train}
		sp.Data.Train.Count = count
		js := must(sp.JSON())
		jobs = append(jobs, must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: maxPrice})))
	}
	small, large := jobs[0], jobs[1]
	if small.CU != 1 || large.CU != 2 {
		t.Fatalf("compute units %d (6,000 samples) and %d (60,000), want 1 and 2", small.CU, large.CU)
	}
	if small.MaxCostMicroUSD != maxPrice/1000 || large.MaxCostMicroUSD != 2*maxPrice/1000 || small.EscrowMicroUSD >= large.EscrowMicroUSD {
		t.Fatalf("max costs %d and %d, escrows %d and %d", small.MaxCostMicroUSD, large.MaxCostMicroUSD, small.EscrowMicroUSD, large.EscrowMicroUSD)
	}
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: price, Capacity: 2, TTL: time.Hour}))
	var costs []int64
	for _, j := range jobs {
		m := must(s.Job(ctx, must(spec.ParseJobID(j.ID))))
		if m.State != lifecycle.Matched || m.PriceNanoUSDPerCU != price {
			t.Fatalf("job %s: %s at %d n$/CU, want matched at %d", m.ID, m.State, m.PriceNanoUSDPerCU, price)
		}
		costs = append(costs, m.PriceNanoUSDPerCU*m.CU/1000)
	}
	if costs[0] != price/1000 || costs[1] != 2*price/1000 {
		t.Fatalf("trade costs %v, want [%d %d]", costs, price/1000, 2*price/1000)
	}
	checkAll(t, s, led)
}
