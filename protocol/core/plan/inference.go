package plan

import (
	"fmt"
	"math"
)

// InferenceRatePPM is the verification rate, in millionths, for verified
// inference (SPEC.md §21): each answered request is checked independently
// with this probability, drawn after the solver signed its receipt. A
// solver that answers requestsPerDay requests and cheats on at least
// cheatPPM of them cheats on K = ⌈cheatPPM · requestsPerDay / 10^6⌉; it
// escapes a day unnoticed with probability (1 − p)^K whichever K it
// chooses, and the rate is the least p in millionths with
// (1 − p)^K ≤ 1 − confidencePPM / 10^6.
//
// Example: 1% cheating caught with 99% over 10,000 requests a day (K =
// 100) needs p = 45,008 ppm (4.5%); over 1,000 requests (K = 10), 369,043
// ppm. Below one cheated request a day nothing can be promised (every
// request is checked: 10^6).
func InferenceRatePPM(cheatPPM, confidencePPM, requestsPerDay int64) (int64, error) {
	if cheatPPM <= 0 || cheatPPM > PPM || confidencePPM <= 0 || confidencePPM >= PPM || requestsPerDay < 1 || requestsPerDay > 1<<40 {
		return 0, fmt.Errorf("%w: cheat %d ppm, confidence %d ppm, %d requests a day", ErrInvalid, cheatPPM, confidencePPM, requestsPerDay)
	}
	k := (cheatPPM*requestsPerDay + PPM - 1) / PPM
	logMiss := math.Log(float64(PPM-confidencePPM) / PPM)
	p := int64(math.Ceil(PPM * -math.Expm1(logMiss/float64(k))))
	// Float rounding: step up until the bound holds, down while it still does.
	holds := func(p int64) bool { return float64(k)*math.Log1p(-float64(p)/PPM) <= logMiss+1e-12 }
	for p < PPM && !holds(p) {
		p++
	}
	for p > 1 && holds(p-1) {
		p--
	}
	return min(max(p, 1), PPM), nil
}

// InferenceDetectPPM is the probability, in millionths and rounded down,
// that verifying at ratePPM catches a solver cheating on k requests:
// 1 − (1 − p)^k.
func InferenceDetectPPM(ratePPM, k int64) int64 {
	if ratePPM >= PPM {
		return PPM
	}
	return int64(math.Floor(PPM * -math.Expm1(float64(k)*math.Log1p(-float64(ratePPM)/PPM))))
}
