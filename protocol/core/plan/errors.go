package plan

import "errors"

// Errors, checked with errors.Is.
var (
	// ErrInvalid: an input out of its documented range.
	ErrInvalid = errors.New("plan: invalid input")
	// ErrTooManySamples: the policy needs more than MaxSamples segments.
	ErrTooManySamples = errors.New("plan: policy needs more samples than one challenge may draw")
	// ErrInfeasible: no sample count meets the policy (independent model:
	// even a full replay misses the cheater too often), or no candidate
	// digest interval meets the constraints.
	ErrInfeasible = errors.New("plan: policy cannot be met")
	// ErrOverflow: a result does not fit in an int64.
	ErrOverflow = errors.New("plan: result overflows int64")
)
