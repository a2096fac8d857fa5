package kernel

import "errors"

// Errors returned by ByName; match them with errors.Is.
var (
	// ErrUnknownKernel: the name is not one this package defines.
	ErrUnknownKernel = errors.New("kernel: unknown kernel")
	// ErrUnavailable: the kernel exists but cannot run here (the CPU lacks
	// the instructions, or the build uses the purego tag or another GOARCH).
	ErrUnavailable = errors.New("kernel: unavailable on this CPU or build")
)
