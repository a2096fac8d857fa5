package store

import "errors"

// Errors returned by this package; test them with errors.Is.
var (
	// ErrNotFound: no chunk with that ID, or no checkpoint at that job and
	// step.
	ErrNotFound = errors.New("store: not found")
	// ErrCorrupt: stored or received bytes fail verification: a chunk that
	// does not hash to its ID, a manifest that does not decode or whose
	// roots and digest disagree with its chunk IDs, a rebuilt state whose
	// digest is not the manifest's.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrTooLarge: a chunk longer than commit.ChunkBytes, or a state or
	// manifest beyond the limits (MaxTensors, MaxChunks, ...).
	ErrTooLarge = errors.New("store: too large")
	// ErrInvalidState: a state handed to PutCheckpoint is malformed (a
	// negative step, a shape that does not match the data, a bad name).
	ErrInvalidState = errors.New("store: invalid state")
	// ErrMismatch: a well-formed checkpoint that does not belong where it
	// was asked for: another job, another step, or tensors other than those
	// the job's spec implies.
	ErrMismatch = errors.New("store: checkpoint does not match the job")
	// ErrConflict: a different checkpoint is already stored at that job and
	// step. States are deterministic, so two different ones mean one is
	// wrong; delete the old one explicitly to replace it.
	ErrConflict = errors.New("store: a different checkpoint exists at this step")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)
