package inferdispute

import "errors"

// Errors; match them with errors.Is.
var (
	// ErrNoDispute: the record is not a dispute (its receipt is not the
	// solver's signed statement about this request and output, or the
	// model is not the receipt's).
	ErrNoDispute = errors.New("inferdispute: no dispute")
	// ErrBadEvidence: evidence that does not hold up: an opening that does
	// not match the agreed hash, a verdict other than the recomputed one.
	ErrBadEvidence = errors.New("inferdispute: evidence does not check")
	// ErrMalformed: bytes that do not decode (wrong tag, truncated,
	// trailing data, a count or size over its limit).
	ErrMalformed = errors.New("inferdispute: malformed message")
	// ErrBadOpening: a party's opening of a tensor does not match its
	// agreed hash.
	ErrBadOpening = errors.New("inferdispute: bad opening")
)
