//go:build !linux

package idle

import "errors"

// CPU is not implemented outside Linux: it reports an error, which the
// gate treats as busy, so a solver there must be given a GPU sampler or
// an explicit always-idle policy.
func CPU(maxPct float64) Sampler {
	return func() (Reading, error) { return Reading{}, errors.New("idle: CPU sampling needs Linux /proc") }
}
