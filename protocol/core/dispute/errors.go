package dispute

import "errors"

// Errors; match them with errors.Is.
var (
	// ErrNoDispute: the segment is not a dispute (the claims at its end
	// agree, or its steps are outside the job).
	ErrNoDispute = errors.New("dispute: no dispute")
	// ErrBadEvidence: evidence that does not hold up: a transcript that is
	// not a binary search, an opening that does not match the agreed hash,
	// a verdict other than the recomputed one.
	ErrBadEvidence = errors.New("dispute: evidence does not check")
	// ErrMalformed: bytes that do not decode (wrong tag, truncated,
	// trailing data, a count or size over its limit).
	ErrMalformed = errors.New("dispute: malformed message")
	// ErrBadOpening: a party's opening of a tensor or of the batch does
	// not match what it must match.
	ErrBadOpening = errors.New("dispute: bad opening")
)
