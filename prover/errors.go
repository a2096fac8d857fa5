package prover

import "errors"

// Errors.
var (
	// ErrInvalidProof: the proof does not verify against the key and the
	// public inputs.
	ErrInvalidProof = errors.New("prover: invalid proof")
	// ErrMalformed: bytes that do not decode to a proof, key or
	// contribution of the expected size.
	ErrMalformed = errors.New("prover: malformed input")
	// ErrCorrupt: a cached file whose content does not match its name.
	ErrCorrupt = errors.New("prover: cache entry does not match its hash")
	// ErrNotFound: no cache entry under that ID.
	ErrNotFound = errors.New("prover: not in the cache")
	// ErrCeremony: a contribution or ceremony state that does not verify.
	ErrCeremony = errors.New("prover: ceremony")
)
