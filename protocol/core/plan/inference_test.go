package plan

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestInferenceRate: the rate is the least that reaches the confidence
// (one ppm less does not), for the target (1% caught with 99%)
// at several traffic levels; a Monte Carlo run of a day's traffic at the
// planned rate catches the cheater in about the planned share of days.
func TestInferenceRate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ perDay, want int64 }{{100, 990_000}, {1_000, 369_043}, {10_000, 45_008}, {100_000, 4_595}, {1_000_000, 461}} {
		p, err := InferenceRatePPM(10_000, 990_000, c.perDay)
		if err != nil || p != c.want {
			t.Errorf("%d requests a day: %d ppm (%v), want %d", c.perDay, p, err, c.want)
		}
		k := (c.perDay + 99) / 100
		if d := InferenceDetectPPM(p, k); d < 990_000 {
			t.Errorf("%d requests a day: detects %d ppm at %d ppm", c.perDay, d, p)
		}
		if d := InferenceDetectPPM(p-1, k); p > 1 && d >= 990_000 && c.perDay != 100 {
			t.Errorf("%d requests a day: %d ppm is not the least (%d ppm detects %d)", c.perDay, p, p-1, d)
		}
	}
	// Monte Carlo: 2,000 days of 10,000 requests, 100 of them cheated.
	p, _ := InferenceRatePPM(10_000, 990_000, 10_000)
	r := rand.New(rand.NewPCG(1, 2))
	caught := 0
	const days = 2000
	for range days {
		for range 100 {
			if r.Int64N(PPM) < p {
				caught++
				break
			}
		}
	}
	if caught < days*985/1000 {
		t.Errorf("caught on %d of %d days at %d ppm, want ≥ 98.5%%", caught, days, p)
	}
	for _, bad := range [][3]int64{{0, 990_000, 10}, {10_000, PPM, 10}, {10_000, 990_000, 0}, {PPM + 1, 1, 1}} {
		if _, err := InferenceRatePPM(bad[0], bad[1], bad[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
