package plan

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/challenge"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// TestMonteCarlo plants cheaters in a 10,000-step job (f = 1%, k = 1),
// draws real challenges (challenge.Seed and challenge.Sample, one beacon per
// trial) of the planner's size, and checks the measured detection rate.
// The tolerance is four binomial standard deviations for the number of
// trials: a correct planner fails it with probability below 10^−4, and the
// seeds are fixed, so the outcome is reproducible.
func TestMonteCarlo(t *testing.T) {
	const (
		n      = 10_000
		fPPM   = 10_000
		cPPM   = 990_000
		trials = 5000
	)
	r := rand.New(rand.NewPCG(11, 12))
	var job spec.JobID
	job[0] = 0xbe
	var root merkle.Digest
	root[0] = 0x1a

	// caught runs the trials; plant returns the bad segments of one trial.
	caught := func(s int64, plant func() []bool) int {
		hits := 0
		for i := range trials {
			bad := plant()
			seed := challenge.Seed(job, root, binary.LittleEndian.AppendUint64([]byte("mc"), uint64(i)))
			picked, err := challenge.Sample(seed, n, int(s))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range picked {
				if bad[p] {
					hits++
					break
				}
			}
		}
		return hits
	}
	clustered := func() []bool { // ⌈f·n⌉ = 100 consecutive wrong steps
		bad := make([]bool, n)
		start := r.IntN(n - 100 + 1)
		for i := start; i < start+100; i++ {
			bad[i] = true
		}
		return bad
	}
	independent := func() []bool { // each step wrong with probability f
		// The gaps between wrong steps are geometric: P(gap ≥ g) = (1−f)^g.
		bad := make([]bool, n)
		lq := math.Log1p(-float64(fPPM) / PPM)
		for i := 0; ; i++ {
			i += int(math.Floor(math.Log(1-r.Float64()) / lq))
			if i >= n {
				return bad
			}
			bad[i] = true
		}
	}
	// check sizes the challenge with plan and predicts the rate with the
	// cheater's own model.
	check := func(name string, plan, cheater Model, plant func() []bool, strict bool) {
		s, err := SampleCount(n, 1, fPPM, cPPM, plan)
		if err != nil {
			t.Fatal(err)
		}
		want := Confidence(n, 1, s, fPPM, cheater)
		hits := caught(s, plant)
		rate := float64(hits) / trials
		sd := math.Sqrt(want * (1 - want) / trials)
		t.Logf("%-38s s = %d (replays %.2f%% of steps), predicted P(detect) = %.4f, measured %d/%d = %.4f (sd %.4f)",
			name, s, 100*float64(s)/n, want, hits, trials, rate, sd)
		if s*100 > 5*n {
			t.Errorf("%s: %d samples replay more than 5%% of %d steps", name, s, n)
		}
		if strict && rate < float64(cPPM)/PPM-4*sd {
			t.Errorf("%s: detection rate %.4f below %.2f − 4 sd", name, rate, float64(cPPM)/PPM)
		}
		if math.Abs(rate-want) > 4*sd+1.0/trials {
			t.Errorf("%s: measured %.4f, predicted %.4f", name, rate, want)
		}
	}
	check("clustered cheater, clustered plan", Clustered, Clustered, clustered, true)
	check("independent cheater, independent plan", Independent, Independent, independent, true)
	// The clustered plan against a cheater who is wrong on 1% of steps only
	// on average: (1 − f)^448 ≈ 0.9888 < c, the gap that Independent closes.
	check("independent cheater, clustered plan", Clustered, Independent, independent, false)
}
