package plan

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
)

// Inputs describe a job and measured costs for ChooseInterval.
type Inputs struct {
	Steps            int64 // n, in [1, 2^40]
	CheatFractionPPM int64 // f: audit.cheat_fraction_ppm
	ConfidencePPM    int64 // c: audit.confidence_ppm
	Model            Model // default Clustered

	// StepNanos is the solver's time for one training step (measured; ≥ 1).
	StepNanos int64
	// DigestNanos is the time to compute one state digest (measured; ≥ 0).
	DigestNanos int64
	// ReplayNanos is a verifier's time to replay one step; 0 means StepNanos.
	ReplayNanos int64
	// SegmentNanos is a verifier's fixed cost per audited segment: fetching
	// and opening the checkpoint it starts from, checking it (≥ 0).
	SegmentNanos int64
	// MaxReplayPPM caps the steps one audit may replay, as a fraction of n;
	// 0 means no cap.
	MaxReplayPPM int64
	// GainMicroUSD is what the solver could gain by cheating (the compute
	// it saves, about the job's price); when > 0 the plan carries the bond.
	GainMicroUSD int64

	// Intervals are the candidate digest intervals k, each in [1, 2^40],
	// at most MaxCandidates; nil means 1, 2, 4, … below n, then n.
	Intervals []int64
}

// MaxCandidates bounds Inputs.Intervals.
const MaxCandidates = 128

// Point is the cost of one digest interval.
type Point struct {
	Interval    int64 `json:"digest_interval"`
	Segments    int64 `json:"segments"`     // N = ⌈n/k⌉
	BadSegments int64 `json:"bad_segments"` // B = ⌈f·n/k⌉ (the clustered cheater)
	Samples     int64 `json:"samples"`      // s = SampleCount
	// ReplaySteps is the most steps an audit replays: s·k, or n when
	// s = N (the last segment may be short).
	ReplaySteps int64 `json:"replay_steps"`
	ReplayPPM   int64 `json:"replay_ppm"` // ⌈ReplaySteps·10^6 / n⌉
	// OverheadPPM is the solver's hashing time per unit of training time,
	// ⌈DigestNanos·10^6 / (k·StepNanos)⌉.
	OverheadPPM int64 `json:"overhead_ppm"`
	// SolverNanos is the solver's extra time: (N+1) digests (steps 0, k,
	// 2k, … and n) of DigestNanos, ≈ OverheadPPM·n·StepNanos/10^6.
	SolverNanos int64 `json:"solver_ns"`
	// AuditNanos is s·SegmentNanos + ReplaySteps·ReplayNanos.
	AuditNanos int64 `json:"audit_ns"`
	TotalNanos int64 `json:"total_ns"` // SolverNanos + AuditNanos
	// Confidence is P(detect) at s under the model (reporting only).
	Confidence float64 `json:"confidence"`
	Feasible   bool    `json:"feasible"`
	Reason     string  `json:"reason,omitempty"` // why not feasible
}

// Plan is the chosen digest interval and what it implies.
type Plan struct {
	Point
	Model Model `json:"model"`
	// BondMicroUSD is Bond(GainMicroUSD, ConfidencePPM); 0 without a gain.
	BondMicroUSD int64 `json:"bond_micro_usd"`
}

func (in *Inputs) check() error {
	if err := check(in.Steps, 1, in.CheatFractionPPM, in.ConfidencePPM, in.Model); err != nil {
		return err
	}
	switch {
	case in.StepNanos < 1 || in.DigestNanos < 0 || in.ReplayNanos < 0 || in.SegmentNanos < 0:
		return fmt.Errorf("%w: costs must be ≥ 0 (step ≥ 1 ns)", ErrInvalid)
	case in.MaxReplayPPM < 0 || in.MaxReplayPPM > PPM:
		return fmt.Errorf("%w: max replay %d ppm", ErrInvalid, in.MaxReplayPPM)
	case in.GainMicroUSD < 0:
		return fmt.Errorf("%w: gain %d micro-USD", ErrInvalid, in.GainMicroUSD)
	case len(in.Intervals) > MaxCandidates:
		return fmt.Errorf("%w: %d candidate intervals (at most %d)", ErrInvalid, len(in.Intervals), MaxCandidates)
	}
	for _, k := range in.Intervals {
		if k < 1 || k > MaxSteps {
			return fmt.Errorf("%w: digest interval %d not in [1, 2^40]", ErrInvalid, k)
		}
	}
	return nil
}

// DefaultIntervals returns 1, 2, 4, … below n, then n.
func DefaultIntervals(n int64) []int64 {
	var ks []int64
	for k := int64(1); k < n; k *= 2 {
		ks = append(ks, k)
	}
	return append(ks, n)
}

// ChooseInterval evaluates every candidate digest interval k and picks the
// one with the least total cost (solver hashing plus audit replay), among
// those whose sample count exists and whose replay stays within
// MaxReplayPPM; ties go to the smaller k (finer segments make a dispute's
// bisection shorter). It returns the plan and every point, in candidate
// order, for tables and plots. Sample counts come from SampleCount and are
// exact; costs are int64 nanoseconds, and a point whose cost overflows is
// infeasible. Errors: ErrInvalid for bad inputs, ErrInfeasible when no
// candidate qualifies (the points still say why), ErrOverflow from Bond.
func ChooseInterval(in Inputs) (Plan, []Point, error) {
	if err := in.check(); err != nil {
		return Plan{}, nil, err
	}
	ks := in.Intervals
	if ks == nil {
		ks = DefaultIntervals(in.Steps)
	}
	replayNanos := in.ReplayNanos
	if replayNanos == 0 {
		replayNanos = in.StepNanos
	}
	points := make([]Point, 0, len(ks))
	best := -1
	for _, k := range ks {
		p := evaluate(in, k, replayNanos)
		points = append(points, p)
		if p.Feasible && (best < 0 || p.TotalNanos < points[best].TotalNanos ||
			p.TotalNanos == points[best].TotalNanos && p.Interval < points[best].Interval) {
			best = len(points) - 1
		}
	}
	if best < 0 {
		return Plan{}, points, fmt.Errorf("%w: no candidate digest interval qualifies", ErrInfeasible)
	}
	plan := Plan{Point: points[best], Model: in.Model}
	if in.GainMicroUSD > 0 {
		b, err := Bond(in.GainMicroUSD, in.ConfidencePPM)
		if err != nil {
			return Plan{}, points, err
		}
		plan.BondMicroUSD = b
	}
	return plan, points, nil
}

func evaluate(in Inputs, k, replayNanos int64) Point {
	n := in.Steps
	N := Segments(n, k)
	p := Point{Interval: k, Segments: N, BadSegments: BadSegments(n, k, in.CheatFractionPPM)}
	s, err := SampleCount(n, k, in.CheatFractionPPM, in.ConfidencePPM, in.Model)
	if err != nil {
		p.Reason = err.Error()
		return p
	}
	p.Samples = s
	p.Confidence = Confidence(n, k, s, in.CheatFractionPPM, in.Model)
	p.ReplaySteps = s * k // s < N here, or…
	if s == N {
		p.ReplaySteps = n // …every segment, the last one maybe short
	}
	p.ReplayPPM = ceilDiv(p.ReplaySteps*PPM, n) // ≤ 2^40·10^6 < 2^63
	// Checked arithmetic: a cost that overflows saturates at MaxInt64 and
	// makes the point infeasible.
	over := false
	mul := func(a, b int64) int64 {
		hi, lo := bits.Mul64(uint64(a), uint64(b)) // a, b ≥ 0
		if hi != 0 || lo > math.MaxInt64 {
			over = true
			return math.MaxInt64
		}
		return int64(lo)
	}
	add := func(a, b int64) int64 {
		if a > math.MaxInt64-b { // a, b ≥ 0
			over = true
			return math.MaxInt64
		}
		return a + b
	}
	p.OverheadPPM = overheadPPM(in.DigestNanos, k, in.StepNanos)
	p.SolverNanos = mul(N+1, in.DigestNanos)
	p.AuditNanos = add(mul(s, in.SegmentNanos), mul(p.ReplaySteps, replayNanos))
	p.TotalNanos = add(p.SolverNanos, p.AuditNanos)
	if over {
		p.Reason = "cost overflows int64 nanoseconds"
		return p
	}
	if in.MaxReplayPPM > 0 && p.ReplaySteps*PPM > in.MaxReplayPPM*n {
		p.Reason = fmt.Sprintf("replays %d of %d steps, over the %d ppm cap", p.ReplaySteps, n, in.MaxReplayPPM)
		return p
	}
	p.Feasible = true
	return p
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// overheadPPM returns ⌈digest·10^6 / (k·step)⌉, saturated at MaxInt64.
func overheadPPM(digest, k, step int64) int64 {
	num := new(big.Int).Mul(big.NewInt(digest), big.NewInt(PPM))
	den := new(big.Int).Mul(big.NewInt(k), big.NewInt(step))
	num.Add(num, den).Sub(num, big.NewInt(1)).Quo(num, den)
	if !num.IsInt64() {
		return math.MaxInt64
	}
	return num.Int64()
}
