package plan

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// target is the reference audit target (10,000 steps, f = 1%, c = 99%,
// SPEC.md §15) with costs of the order measured
// for the 784-256-128-10 MLP at batch 64: a 0.46 ms step, a 0.55 ms state
// digest (≈ 1 MB at 1.7 GB/s) and 2 ms to fetch and open a checkpoint.
func target() Inputs {
	return Inputs{
		Steps: 10_000, CheatFractionPPM: 10_000, ConfidencePPM: 990_000,
		StepNanos: 460_000, DigestNanos: 550_000, SegmentNanos: 2_000_000,
		Intervals: []int64{1, 2, 4, 8, 16},
	}
}

func TestChooseIntervalCurve(t *testing.T) {
	for _, m := range []Model{Clustered, Independent} {
		in := target()
		in.Model = m
		plan, pts, err := ChooseInterval(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pts {
			t.Logf("%-11v k=%2d N=%5d B=%3d s=%3d replay=%5d steps (%5.2f%%) overhead=%6.2f%% solver=%5.2fs audit=%5.2fs total=%5.2fs P=%.4f",
				m, p.Interval, p.Segments, p.BadSegments, p.Samples, p.ReplaySteps, float64(p.ReplayPPM)/1e4,
				float64(p.OverheadPPM)/1e4, float64(p.SolverNanos)/1e9, float64(p.AuditNanos)/1e9, float64(p.TotalNanos)/1e9, p.Confidence)
			if !p.Feasible || p.Confidence < 0.99 {
				t.Errorf("point %+v", p)
			}
			if p.TotalNanos < plan.TotalNanos {
				t.Errorf("k=%d is cheaper than the plan's k=%d", p.Interval, plan.Interval)
			}
			if want := (p.Segments+1)*in.DigestNanos + p.Samples*in.SegmentNanos + p.ReplaySteps*in.StepNanos; p.TotalNanos != want {
				t.Errorf("k=%d: total %d, want %d", p.Interval, p.TotalNanos, want)
			}
		}
		t.Logf("%v: chose k=%d", m, plan.Interval)
	}
	// Worked by hand (clustered): k=8 costs 1251·0.55 ms + 372·(2 ms + 8·0.46 ms)
	// = 0.68805 s + 2.11296 s = 2.80101 s, the least of the five.
	plan, pts, _ := ChooseInterval(target())
	if plan.Interval != 8 || plan.TotalNanos != 2_801_010_000 || plan.Model != Clustered || len(pts) != 5 {
		t.Fatalf("plan %+v", plan)
	}
	if pts[0].OverheadPPM != 1_195_653 || pts[3].OverheadPPM != 149_457 { // ⌈550/460·10^6⌉, ⌈550/3680·10^6⌉
		t.Fatalf("overheads %d, %d", pts[0].OverheadPPM, pts[3].OverheadPPM)
	}
}

func TestChooseIntervalReplayCap(t *testing.T) {
	in := target()
	in.MaxReplayPPM = 50_000 // the reference target: at most 5% of the steps
	in.GainMicroUSD = 2_000_000
	plan, pts, err := ChooseInterval(in)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Interval != 1 || plan.Samples != 448 || plan.ReplayPPM != 44_800 || plan.BondMicroUSD != 20_203 {
		t.Fatalf("plan %+v", plan)
	}
	for _, p := range pts[1:] {
		if p.Feasible || p.Reason == "" {
			t.Errorf("k=%d replays %d ppm but is feasible", p.Interval, p.ReplayPPM)
		}
	}
	in.MaxReplayPPM = 40_000
	if _, pts, err := ChooseInterval(in); !errors.Is(err, ErrInfeasible) || len(pts) != 5 {
		t.Fatalf("a 4%% cap: %v", err)
	}
}

func TestChooseIntervalDefaults(t *testing.T) {
	if got := DefaultIntervals(10); !slices.Equal(got, []int64{1, 2, 4, 8, 10}) {
		t.Fatalf("DefaultIntervals(10) = %v", got)
	}
	if got := DefaultIntervals(8); !slices.Equal(got, []int64{1, 2, 4, 8}) {
		t.Fatalf("DefaultIntervals(8) = %v", got)
	}
	if got := DefaultIntervals(1); !slices.Equal(got, []int64{1}) {
		t.Fatalf("DefaultIntervals(1) = %v", got)
	}
	in := target()
	in.Intervals = nil
	in.ReplayNanos = 230_000 // a faster verifier
	plan, pts, err := ChooseInterval(in)
	if err != nil || len(pts) != 15 || pts[14].Interval != 10_000 || pts[14].Samples != 1 || pts[14].ReplaySteps != 10_000 {
		t.Fatalf("%v, %d points, last %+v", err, len(pts), pts[len(pts)-1])
	}
	t.Logf("default candidates: chose k=%d (total %.2fs)", plan.Interval, float64(plan.TotalNanos)/1e9)
}

func TestChooseIntervalTies(t *testing.T) {
	in := target()
	in.DigestNanos, in.SegmentNanos, in.StepNanos = 0, 0, 1
	in.Intervals = []int64{4, 1, 2}
	// Costs are only replays: 419·4, 448·1, 438·2: k = 1 wins outright.
	plan, _, err := ChooseInterval(in)
	if err != nil || plan.Interval != 1 {
		t.Fatalf("%v, k=%d", err, plan.Interval)
	}
	in.Intervals = []int64{10_000, 20_000} // both: one segment, replay everything
	if plan, _, _ = ChooseInterval(in); plan.Interval != 10_000 {
		t.Fatalf("tie went to k=%d", plan.Interval)
	}
}

func TestChooseIntervalErrors(t *testing.T) {
	for name, edit := range map[string]func(*Inputs){
		"steps":      func(in *Inputs) { in.Steps = 0 },
		"fraction":   func(in *Inputs) { in.CheatFractionPPM = 0 },
		"confidence": func(in *Inputs) { in.ConfidencePPM = PPM },
		"model":      func(in *Inputs) { in.Model = 9 },
		"step cost":  func(in *Inputs) { in.StepNanos = 0 },
		"digest":     func(in *Inputs) { in.DigestNanos = -1 },
		"replay":     func(in *Inputs) { in.ReplayNanos = -1 },
		"segment":    func(in *Inputs) { in.SegmentNanos = -1 },
		"cap":        func(in *Inputs) { in.MaxReplayPPM = PPM + 1 },
		"gain":       func(in *Inputs) { in.GainMicroUSD = -1 },
		"k=0":        func(in *Inputs) { in.Intervals = []int64{1, 0} },
		"k huge":     func(in *Inputs) { in.Intervals = []int64{1<<40 + 1} },
		"too many":   func(in *Inputs) { in.Intervals = make([]int64, MaxCandidates+1) },
	} {
		in := target()
		edit(&in)
		if _, _, err := ChooseInterval(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	// Costs that overflow int64 make a point infeasible, not wrong.
	in := target()
	in.Steps, in.DigestNanos = 1<<40, math.MaxInt64/4
	in.Intervals = []int64{1, 1 << 40}
	plan, pts, err := ChooseInterval(in)
	if err != nil || pts[0].Feasible || pts[0].TotalNanos != math.MaxInt64 || plan.Interval != 1<<40 {
		t.Fatalf("%v; %+v; %+v", err, pts[0], plan)
	}
	// A bond that overflows.
	in = target()
	in.GainMicroUSD, in.ConfidencePPM = math.MaxInt64, 400_000 // b ≈ 1.5·G
	if _, _, err := ChooseInterval(in); !errors.Is(err, ErrOverflow) {
		t.Fatalf("bond overflow: %v", err)
	}
}
