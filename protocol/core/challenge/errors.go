package challenge

import "errors"

// Errors, checked with errors.Is.
var (
	// ErrBeacon: a beacon that is empty or longer than MaxBeaconBytes.
	ErrBeacon = errors.New("challenge: beacon must be 1 to 256 bytes")
	// ErrCount: a negative segment count, a negative sample count, more
	// samples than segments, or more than MaxCount samples.
	ErrCount = errors.New("challenge: bad sample count")
)
