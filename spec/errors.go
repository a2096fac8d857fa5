package spec

import "errors"

// Errors returned by Decode and Validate; match them with errors.Is.
var (
	// ErrMalformed: the bytes are not a spec (bad JSON, unknown field,
	// trailing data, too large).
	ErrMalformed = errors.New("spec: malformed")
	// ErrInvalid: a well-formed spec breaks a rule of SPEC.md §"Validation".
	ErrInvalid = errors.New("spec: invalid")
	// ErrUnsupported: the spec asks for a version, op, loss, optimizer or
	// source that this implementation does not know.
	ErrUnsupported = errors.New("spec: unsupported")
	// ErrOverflow: some accumulator of the training step could exceed int32.
	ErrOverflow = errors.New("spec: accumulator may overflow int32")
)
